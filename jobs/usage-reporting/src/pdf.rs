//! The PDF: typst as a library, with the template in `report.typ` and every figure passed as a
//! virtual `data.json` the template reads. Tenant names and every other value are data to the
//! template, never markup, so a name such as `#eval("…")` or `$x$ ]` prints as written.
//!
//! Deterministic: the fonts are vendored (DejaVu Sans, embedded as subsets), `today()` is the
//! period's end, and the PDF's identifier and creation date are fixed from the tenant and the
//! period, so the same report gives the same bytes.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;

use crate::period::utc_date;
use crate::report::{Row, Section, TenantReport};

/// The template.
const TEMPLATE: &str = include_str!("report.typ");

static FONTS: LazyLock<(LazyHash<FontBook>, Vec<Font>)> = LazyLock::new(|| {
    let fonts: Vec<Font> = [
        &include_bytes!("../fonts/DejaVuSans.ttf")[..],
        &include_bytes!("../fonts/DejaVuSans-Bold.ttf")[..],
        &include_bytes!("../fonts/DejaVuSansMono.ttf")[..],
    ]
    .into_iter()
    .flat_map(|data| Font::iter(Bytes::new(data)))
    .collect();
    (LazyHash::new(FontBook::from_fonts(&fonts)), fonts)
});

static LIBRARY: LazyLock<LazyHash<Library>> = LazyLock::new(|| LazyHash::new(Library::default()));

fn file_id(path: &str) -> FileId {
    // The paths are ours and valid; a failure would be a bug caught by every test.
    let vpath = VirtualPath::new(path).unwrap_or_else(|_| panic!("virtual path {path}"));
    RootedPath::new(VirtualRoot::Project, vpath).intern()
}

/// One compilation's world: the template, `data.json`, the chart, the fonts.
struct ReportWorld {
    main: Source,
    files: HashMap<FileId, Bytes>,
    today: Option<Datetime>,
}

impl World for ReportWorld {
    fn library(&self) -> &LazyHash<Library> {
        &LIBRARY
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &FONTS.0
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::NotSource)
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.main.id() {
            return Ok(Bytes::from_string(self.main.text().to_string()));
        }
        self.files
            .get(&id)
            .cloned()
            .ok_or_else(|| FileError::NotFound(id.vpath().get_without_slash().into()))
    }

    fn font(&self, index: usize) -> Option<Font> {
        FONTS.1.get(index).cloned()
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        self.today
    }
}

/// What the template reads: the report's figures, already formatted.
#[derive(Debug, Serialize)]
struct PdfData<'a> {
    title: String,
    tenant: &'a crate::report::TenantInfo,
    period: &'a str,
    evaluated_at: String,
    counts: &'a crate::report::ControlPlaneCounts,
    api_note: Option<String>,
    summary: Vec<&'a Row>,
    resources: Vec<&'a Row>,
    connect_quotas: Vec<&'a Row>,
    latency: Vec<[String; 3]>,
    has_chart: bool,
    connectors: Vec<ConnectorRow>,
    connect_note: Option<String>,
    forecasts: Vec<[String; 2]>,
    notes: &'a [String],
    queries: &'a [crate::prometheus::QueryNote],
}

#[derive(Debug, Serialize)]
struct ConnectorRow {
    name: String,
    kind: String,
    state: String,
    tasks: String,
}

fn source_note(state: &crate::report::SourceState, what: &str) -> Option<String> {
    match state {
        crate::report::SourceState::NotConfigured => Some(format!("{what}: not configured")),
        crate::report::SourceState::Failed { error } => {
            Some(format!("{what} could not be read: {error}"))
        }
        crate::report::SourceState::Ok => None,
    }
}

fn data_of(r: &TenantReport) -> PdfData<'_> {
    let rows = |sections: &[Section]| -> Vec<&Row> {
        r.table
            .iter()
            .filter(|row| sections.contains(&row.section))
            .collect()
    };
    let api_note = source_note(&r.api_source, "API usage").or_else(|| {
        r.api
            .is_none()
            .then(|| "no API usage data for this period (unknown, not zero)".to_string())
    });
    PdfData {
        title: format!(
            "Usage and quota report: {} ({})",
            r.tenant.name, r.period.label
        ),
        tenant: &r.tenant,
        period: &r.period.label,
        evaluated_at: r.evaluated_at.to_string(),
        counts: &r.control_plane,
        api_note,
        summary: rows(&[Section::Api, Section::Rate]),
        resources: rows(&[Section::Resources]),
        connect_quotas: rows(&[Section::Connect]),
        latency: r
            .latency_rows()
            .into_iter()
            .map(|(a, b, c)| [a, b, c])
            .collect(),
        has_chart: !r.daily.is_empty(),
        connectors: r
            .connect
            .connectors
            .iter()
            .map(|c| ConnectorRow {
                name: c.name.clone(),
                kind: c.kind.clone(),
                state: c.state.clone(),
                tasks: if c.tasks.is_empty() {
                    "no tasks".to_string()
                } else {
                    c.tasks
                        .iter()
                        .map(|t| match &t.error {
                            Some(e) => format!("#{} {} ({e})", t.id, t.state),
                            None => format!("#{} {}", t.id, t.state),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
            .collect(),
        connect_note: source_note(&r.connect.source, "Kafka Connect"),
        forecasts: r
            .quotas
            .iter()
            .map(|q| [q.label.clone(), q.forecast.summary()])
            .collect(),
        notes: &r.notes,
        queries: &r.queries,
    }
}

/// Renders `report` (with its chart SVG) to PDF bytes.
pub fn render(report: &TenantReport, chart_svg: Option<&str>) -> Result<Vec<u8>, String> {
    let data = serde_json::to_vec(&data_of(report)).map_err(|e| e.to_string())?;
    let mut files = HashMap::new();
    files.insert(file_id("/data.json"), Bytes::new(data));
    if let Some(svg) = chart_svg {
        files.insert(file_id("/chart.svg"), Bytes::new(svg.as_bytes().to_vec()));
    }
    let end = utc_date(report.period.end);
    let today = Datetime::from_ymd(end.year() as i32, end.month() as u8, end.day() as u8);
    let world = ReportWorld {
        main: Source::new(file_id("/report.typ"), TEMPLATE.to_string()),
        files,
        today,
    };
    let compiled = typst::compile::<PagedDocument>(&world);
    let document = compiled.output.map_err(|errors| {
        errors
            .iter()
            .map(|e| e.message.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let timestamp = Datetime::from_ymd_hms(
        end.year() as i32,
        end.month() as u8,
        end.day() as u8,
        0,
        0,
        0,
    )
    .map(typst_pdf::Timestamp::new_utc);
    let options = typst_pdf::PdfOptions {
        ident: Smart::Custom(format!(
            "usage-report/{}/{}",
            report.tenant.slug, report.period.label
        )),
        creator: Smart::Custom(Some("usage-reporting".to_string())),
        timestamp,
        ..typst_pdf::PdfOptions::default()
    };
    let pdf = typst_pdf::pdf(&document, &options).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.message.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    // typst memoises across compilations; 200 reports would otherwise keep every one alive.
    typst::comemo::evict(2);
    Ok(pdf)
}
