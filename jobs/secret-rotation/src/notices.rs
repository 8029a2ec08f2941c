//! Owner notices: one email per due date, recorded in the secret's `custom_metadata`
//! (`notice_sent_for`) only after the SMTP server accepted it, so it is sent once, and sent again
//! when a delivery failed.

use common::event::{AlertSent, Severity};
use common::harness::RunContext;

use crate::config::RotationConfig;
use crate::journal::Journal;
use crate::plan::{Action, Planned};
use crate::vault::Vault;

/// Sends the notice of one secret and records it. `Err` carries the attempt (if one was made)
/// and why it did not count.
pub async fn send(
    ctx: &RunContext<'_, RotationConfig>,
    vault: &Vault,
    line: &Planned,
) -> Result<AlertSent, (Vec<AlertSent>, String)> {
    let d = &line.item.decl;
    let Some(c) = line.class else {
        return Err((Vec::new(), "no due date".into()));
    };
    if !ctx.notifier.has_email() {
        return Err((Vec::new(), "no smtp server configured (notify.smtp)".into()));
    }
    let due = c.due_at.strftime("%Y-%m-%d").to_string();
    let (subject, what) = if line.action == Action::Manual {
        (
            format!(
                "[secret-rotation] action required: rotate {} by {due}",
                d.name
            ),
            format!(
                "{} secrets are rotated by hand: the job will not rotate this one. Rotate it \
                 (and update its consumers) by {due}; the job's findings say \"action required\" \
                 until its Vault metadata records a new last_rotated.",
                d.kind
            ),
        )
    } else {
        (
            format!("[secret-rotation] {} will be rotated on {due}", d.name),
            format!(
                "It will be rotated automatically on or after {due}; its consumers (pods that \
                 read it) will be restarted and verified. Nothing to do unless a consumer reads \
                 it in a way the job cannot see (outside Kubernetes)."
            ),
        )
    };
    let text = format!(
        "Secret: {name}\nWhere: {resource}\nType: {kind}\nAge: {age} days\nDue: {due}\n\n{what}\n",
        name = d.name,
        resource = d.vault.resource(),
        kind = d.kind,
        age = c.age_days(),
    );
    ctx.acted();
    let result = ctx
        .notifier
        .send_email(std::slice::from_ref(&d.owner), &subject, &text, None)
        .await;
    let alert = AlertSent {
        channel: "email".into(),
        target: d.owner.to_string(),
        subject,
        severity: if line.action == Action::Manual {
            Severity::Warning
        } else {
            Severity::Info
        },
        sent_at: ctx.clock.now(),
        delivered: result.is_ok(),
        error: result.as_ref().err().map(ToString::to_string),
    };
    if let Err(e) = result {
        return Err((vec![alert], e.to_string()));
    }
    // Recorded after delivery: re-read so the write is check-and-set on what is there now.
    let recorded =
        async {
            let meta = vault.metadata(&d.vault).await?.ok_or_else(|| {
                crate::vault::VaultError::Decode {
                    what: d.vault.to_string(),
                    message: "gone".into(),
                }
            })?;
            let mut journal = Journal::from_metadata(&meta.custom);
            journal.notice_sent_for = Some(c.due_at);
            vault
                .write_metadata(&d.vault, &journal.to_metadata(), meta.metadata_version)
                .await
        };
    match recorded.await {
        Ok(()) => Ok(alert),
        Err(e) => Err((
            vec![alert],
            format!("sent, but not recorded (it will be sent again): {e}"),
        )),
    }
}
