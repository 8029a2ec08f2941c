//! The table for people: one row per finding, then the deletion order and the cost avoided.

use common::event::ResultEvent;
use common::harness::{render_rows, summary_line};

fn field(f: &common::event::Finding, key: &str) -> String {
    match f.fields.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => "-".to_string(),
    }
}

fn usd(v: &serde_json::Value) -> String {
    // `-0.0 == 0.0`: never print "$-0.00".
    let v = inventory::cost::round_cents(v.as_f64().unwrap_or_default());
    format!("${v:.2}")
}

/// Renders the run's result event as the table `--output table` prints.
pub fn table(event: &ResultEvent) -> String {
    let header = [
        "RESOURCE", "KIND", "OWNER", "PROJECT", "DEADLINE", "STAGE", "ACTION", "REASON",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for f in &event.findings {
        rows.push(vec![
            f.resource.clone(),
            field(f, "kind"),
            field(f, "owner"),
            field(f, "project"),
            field(f, "deadline"),
            field(f, "stage"),
            field(f, "action"),
            field(f, "reason"),
        ]);
    }
    let mut out = render_rows(&rows);
    let waves = event
        .details
        .get("deletion_waves")
        .and_then(|w| w.as_array());
    if let Some(waves) = waves.filter(|w| !w.is_empty()) {
        let verb = if event.dry_run {
            "would delete"
        } else {
            "deletion order"
        };
        out.push_str(&format!("\n{verb}, in order:\n"));
        let ids = waves
            .iter()
            .flat_map(|w| w.as_array().into_iter().flatten());
        for (n, id) in ids.enumerate() {
            out.push_str(&format!(
                "  {}. {}\n",
                n + 1,
                id.as_str().unwrap_or_default()
            ));
        }
    }
    if let Some(total) = event.details.get("cost_avoided_usd") {
        let label = if event.dry_run {
            "cost that would be avoided"
        } else {
            "cost avoided"
        };
        out.push_str(&format!("\n{label}: {}", usd(total)));
        if let Some(by) = event
            .details
            .get("cost_avoided_by_project")
            .and_then(|b| b.as_object())
        {
            let parts: Vec<String> = by.iter().map(|(k, v)| format!("{k} {}", usd(v))).collect();
            if !parts.is_empty() {
                out.push_str(&format!(" ({})", parts.join(", ")));
            }
        }
        if let Some(n) = event
            .details
            .get("cost_unknown")
            .and_then(|v| v.as_u64())
            .filter(|n| *n > 0)
        {
            out.push_str(&format!(
                "; cost unknown for {n} (not in the pricing table), counted as $0.00"
            ));
        }
        out.push('\n');
    }
    out.push_str(&summary_line(event));
    out
}
