//! Application load balancers and target groups against moto: tags through DescribeTags, the
//! target group waiting for the load balancer whose listener forwards to it, the load balancer's
//! security group waiting for it, removal in that order.
//!
//! moto 5.2: DeleteLoadBalancer forgets the load balancer at once (AWS: its network interfaces
//! go within minutes), and a target group still in use by a listener is refused with
//! `ResourceInUse`, as on AWS. moto allows at most ten tags per ELBv2 resource (AWS: 50).

use anyhow::Result;
use inventory::{Removal, State};

use crate::bed::{Bed, eligible, find, list};
use crate::guard::KeepGuard;

#[tokio::test]
async fn a_load_balancer_and_its_target_group_are_listed_linked_and_removed_in_order() -> Result<()>
{
    let bed = Bed::start().await?;
    let sg = bed.group("web-lb-sg", &eligible("web-lb-sg")).await?;
    let lb_arn = bed
        .load_balancer("web-lb", &sg, &eligible("web-lb"))
        .await?;
    let tg_arn = bed.target_group("web-tg", &eligible("web-tg")).await?;
    bed.listener(&lb_arn, &tg_arn).await?;
    // A target group nothing routes to waits for nothing.
    let spare_arn = bed.target_group("spare-tg", &eligible("spare-tg")).await?;
    let p = bed.providers();
    let all = list(&p).await?;

    let lb = find(&all, "load-balancer", "web-lb");
    assert_eq!(lb.id, lb_arn);
    assert!(
        lb.id.starts_with(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-lb/"
        ),
        "{}",
        lb.id
    );
    assert_eq!(lb.tags, eligible("web-lb"));
    assert_eq!(lb.state.as_deref(), Some("active"));
    assert!(lb.attributes.created.is_some());
    assert!(lb.wait_for.is_empty());

    let tg = find(&all, "target-group", "web-tg");
    assert_eq!(tg.id, tg_arn);
    assert_eq!(tg.tags, eligible("web-tg"));
    assert_eq!(tg.state.as_deref(), Some("available"));
    assert_eq!(tg.wait_for, std::slice::from_ref(&lb.id));
    let spare = find(&all, "target-group", "spare-tg");
    assert_eq!(spare.id, spare_arn);
    assert!(spare.wait_for.is_empty());

    let group = find(&all, "security-group", &sg);
    assert_eq!(group.wait_for, std::slice::from_ref(&lb.id));

    let guard = KeepGuard::default();
    // Out of order: the listener still forwards to the group. Retryable: once the load
    // balancer (and its listener) are gone it works.
    let e = p.remove(tg, &guard).await.expect_err("in use");
    assert!(e.retryable, "{e}");
    assert!(e.message.starts_with("ResourceInUse"), "{e}");
    assert_eq!(p.state(tg).await?, State::Present("available".into()));

    assert_eq!(
        p.remove(lb, &guard).await?,
        Removal::Pending {
            state: "deleting".into()
        }
    );
    assert_eq!(p.state(lb).await?, State::Gone, "moto: at once");
    assert_eq!(p.remove(lb, &guard).await?, Removal::Done, "idempotent");

    for r in [tg, spare, group] {
        assert_eq!(p.remove(r, &guard).await?, Removal::Done, "{}", r.name);
        assert_eq!(p.state(r).await?, State::Gone, "{}", r.name);
        assert_eq!(
            p.remove(r, &guard).await?,
            Removal::Done,
            "{} twice",
            r.name
        );
    }
    let asked: Vec<String> = guard.asked().into_iter().map(|a| a.id).collect();
    assert_eq!(
        asked,
        [
            tg.id.clone(),
            lb.id.clone(),
            tg.id.clone(),
            spare.id.clone(),
            group.id.clone()
        ],
        "asked on every attempt while present, never once gone"
    );
    assert!(list(&p).await?.is_empty());
    Ok(())
}
