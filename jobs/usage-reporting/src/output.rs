//! What a report becomes besides the PDF: the CSV attachment, the tenant's email (text + HTML),
//! the platform summary, and file names. All of it reads the [`TenantReport`]'s formatted rows,
//! so the email, the CSV and the PDF show the same strings.

use common::notify::escape_html;

use crate::forecast::fmt_num;
use crate::quota::QuotaState;
use crate::report::{Platform, Section, TenantReport};

/// The CSV of the report's figures: one line per summary-table row, then one per latency
/// statistic. Columns: `tenant,period_start,period_end,section,metric,value,quota,used,state`.
pub fn csv(report: &TenantReport) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let start = report.period.start.to_string();
    let end = report.period.end.to_string();
    w.write_record([
        "tenant",
        "period_start",
        "period_end",
        "section",
        "metric",
        "value",
        "quota",
        "used",
        "state",
    ])
    .map_err(|e| e.to_string())?;
    for r in &report.table {
        let section = match r.section {
            Section::Api => "api",
            Section::Rate => "rate_quota",
            Section::Resources => "resources",
            Section::Connect => "kafka_connect",
        };
        w.write_record([
            report.tenant.slug.as_str(),
            &start,
            &end,
            section,
            &r.metric,
            &r.value,
            &r.quota,
            &r.used,
            &r.state,
        ])
        .map_err(|e| e.to_string())?;
    }
    for (name, value, bucket) in report.latency_rows() {
        w.write_record([
            report.tenant.slug.as_str(),
            &start,
            &end,
            "latency",
            &name,
            &value,
            "—",
            &bucket,
            "",
        ])
        .map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// A file name for the tenant's files: the slug (ASCII by the schema's constraint, filtered
/// again here) and the period.
pub fn file_stem(report: &TenantReport) -> String {
    let slug: String = report
        .tenant
        .slug
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let start = report.period.start.to_string();
    let end = report.period.end.to_string();
    format!("usage-{slug}-{}_{}", &start[..10], &end[..10])
}

/// The email's subject.
pub fn subject(report: &TenantReport) -> String {
    let exceeded = report
        .quotas
        .iter()
        .filter(|q| q.state == QuotaState::Exceeded)
        .count();
    let near = report
        .quotas
        .iter()
        .filter(|q| q.state == QuotaState::Near)
        .count();
    let mut s = format!(
        "Usage report {}: {}",
        report.tenant.name, report.period.label
    );
    if exceeded > 0 {
        s.push_str(&format!(" — {exceeded} quota(s) exceeded"));
    }
    if near > 0 {
        s.push_str(&format!(" — {near} near quota"));
    }
    s
}

/// The plain-text body.
pub fn text(report: &TenantReport, attached_pdf: bool) -> String {
    let mut t = format!(
        "Usage and quota report for {} ({})\nPeriod: {}\nEvaluated at: {}\n\n",
        report.tenant.name, report.tenant.slug, report.period.label, report.evaluated_at
    );
    let breaches = report.breaches();
    if !breaches.is_empty() {
        t.push_str("Quotas needing attention:\n");
        for q in &breaches {
            t.push_str(&format!(
                "- {}: {} of {} ({}) — {}\n",
                q.label,
                fmt_num(q.used),
                q.limit_text(),
                q.used_percent(),
                q.state.as_str()
            ));
        }
        t.push('\n');
    }
    let rows: Vec<Vec<String>> = std::iter::once(
        ["METRIC", "VALUE", "QUOTA", "USED"]
            .map(String::from)
            .to_vec(),
    )
    .chain(report.table.iter().map(|r| {
        vec![
            r.metric.clone(),
            r.value.clone(),
            r.quota.clone(),
            r.used.clone(),
        ]
    }))
    .collect();
    t.push_str(&common::harness::render_rows(&rows));
    let latency = report.latency_rows();
    if !latency.is_empty() {
        t.push_str("\nLatency:\n");
        for (name, value, bucket) in latency {
            t.push_str(&format!("- {name}: {value} (bucket {bucket})\n"));
        }
    }
    t.push_str("\nForecast:\n");
    for q in &report.quotas {
        t.push_str(&format!("- {}: {}\n", q.label, q.forecast.summary()));
    }
    for n in &report.notes {
        t.push_str(&format!("\nNote: {n}\n"));
    }
    t.push_str(if attached_pdf {
        "\nThe full report is attached as a PDF, the figures as CSV.\n"
    } else {
        "\nThe figures are attached as CSV.\n"
    });
    t
}

/// The HTML body (every value escaped).
pub fn html(report: &TenantReport) -> String {
    let e = escape_html;
    let mut h = format!(
        "<h2>Usage and quota report for {}</h2>\n<p>Period: {}<br>Evaluated at: {}</p>\n",
        e(&report.tenant.name),
        e(&report.period.label),
        e(&report.evaluated_at.to_string())
    );
    h.push_str("<table>\n<tr><th>Metric</th><th>Value</th><th>Quota</th><th>Used</th></tr>\n");
    for r in &report.table {
        let style = match r.state.as_str() {
            "exceeded" => " style=\"color:#b3261e;font-weight:bold\"",
            "near" => " style=\"color:#a15c00\"",
            _ => "",
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td{style}>{}</td></tr>\n",
            e(&r.metric),
            e(&r.value),
            e(&r.quota),
            e(&r.used)
        ));
    }
    h.push_str("</table>\n");
    let latency = report.latency_rows();
    if !latency.is_empty() {
        h.push_str("<h3>Latency</h3>\n<ul>\n");
        for (name, value, bucket) in latency {
            h.push_str(&format!(
                "<li>{}: {} (bucket {})</li>\n",
                e(&name),
                e(&value),
                e(&bucket)
            ));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h3>Forecast</h3>\n<ul>\n");
    for q in &report.quotas {
        h.push_str(&format!(
            "<li>{}: {}</li>\n",
            e(&q.label),
            e(&q.forecast.summary())
        ));
    }
    h.push_str("</ul>\n");
    for n in &report.notes {
        h.push_str(&format!("<p><em>{}</em></p>\n", e(n)));
    }
    h
}

/// The platform summary's subject and text: every tenant's headline figures and breaches.
pub fn platform_summary(
    reports: &[TenantReport],
    platform: &Platform,
    period: &str,
) -> (String, String) {
    let breaches: usize = reports.iter().map(|r| r.breaches().len()).sum();
    let subject = format!(
        "Usage reports {period}: {} tenants, {breaches} quota warning(s)",
        reports.len()
    );
    let mut rows = vec![
        ["TENANT", "CALLS", "FAILED", "ERROR RATE", "WORST QUOTA"]
            .map(String::from)
            .to_vec(),
    ];
    for r in reports {
        let worst = r
            .breaches()
            .first()
            .map(|q| format!("{} {} ({})", q.label, q.used_percent(), q.state.as_str()))
            .unwrap_or_else(|| "ok".to_string());
        let (calls, failed, rate) = match &r.api {
            Some(a) => (
                fmt_num(a.calls as f64),
                fmt_num(a.failed as f64),
                format!("{}%", fmt_num(a.error_rate * 100.0)),
            ),
            None => ("no data".into(), "-".into(), "-".into()),
        };
        rows.push(vec![r.tenant.slug.clone(), calls, failed, rate, worst]);
    }
    let mut text = format!("{subject}\n\n{}", common::harness::render_rows(&rows));
    if !platform.unassigned_connectors.is_empty() {
        text.push_str(&format!(
            "\nKafka Connect connectors without a tenant's department prefix: {}\n",
            platform.unassigned_connectors.join(", ")
        ));
    }
    if !platform.unattributed_calls.is_empty() {
        text.push_str("\nCalls of applications no tenant owns:\n");
        for (app, calls) in &platform.unattributed_calls {
            text.push_str(&format!("- {app}: {}\n", fmt_num(*calls as f64)));
        }
    }
    (subject, text)
}
