//! The chart of calls and errors per day, drawn with plotters' SVG backend and embedded in the
//! PDF as an SVG image (typst renders its text with the report's own fonts).

use plotters::prelude::*;

use crate::report::Day;

/// Font family of the chart's text: the vendored DejaVu Sans the PDF embeds.
const FONT: &str = "DejaVu Sans";

/// An SVG of requests (blue) and failed requests (red) per day; days without data are gaps.
pub fn calls_per_day(days: &[Day]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let max = days
            .iter()
            .filter_map(|d| d.calls)
            .max()
            .unwrap_or(0)
            .max(1);
        // Headroom above the highest day, rounded so the axis labels stay short.
        let top = (max as f64 * 1.1).ceil() as u64;
        let n = days.len().max(1);
        let labels: Vec<String> = days
            .iter()
            .map(|d| d.date.strftime("%m-%d").to_string())
            .collect();
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0..n, 0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
            .y_label_formatter(&|v| crate::forecast::fmt_num(*v as f64))
            .label_style((FONT, 14))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        for (values, color, name) in [
            (
                days.iter().map(|d| d.calls).collect::<Vec<_>>(),
                RGBColor(31, 94, 168),
                "calls",
            ),
            (
                days.iter().map(|d| d.failed).collect::<Vec<_>>(),
                RGBColor(200, 40, 40),
                "failed",
            ),
        ] {
            // One line per run of consecutive days with data.
            let mut run: Vec<(usize, u64)> = Vec::new();
            let mut runs = Vec::new();
            for (i, v) in values.iter().enumerate() {
                match v {
                    Some(v) => run.push((i, *v)),
                    None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                    None => {}
                }
            }
            if !run.is_empty() {
                runs.push(run);
            }
            for (k, r) in runs.into_iter().enumerate() {
                let style = ShapeStyle::from(&color).stroke_width(3);
                let series = chart
                    .draw_series(LineSeries::new(r.clone(), style).point_size(4))
                    .map_err(|e| e.to_string())?;
                if k == 0 {
                    series.label(name).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                    });
                }
            }
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_an_svg_with_both_series_and_date_labels() {
        let day = |d: &str, c: Option<u64>, f: Option<u64>| Day {
            date: d.parse().expect("date"),
            calls: c,
            failed: f,
        };
        let svg = calls_per_day(&[
            day("2026-11-23", Some(100), Some(2)),
            day("2026-11-24", None, None),
            day("2026-11-25", Some(150), Some(0)),
        ])
        .expect("svg");
        assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
        assert!(
            svg.contains("11-23") && svg.contains("11-25"),
            "date labels"
        );
        assert!(svg.contains("calls") && svg.contains("failed"), "legend");
        assert!(svg.contains("DejaVu Sans"), "the embedded font is named");
        // Same input, same SVG.
        assert_eq!(
            svg,
            calls_per_day(&[
                day("2026-11-23", Some(100), Some(2)),
                day("2026-11-24", None, None),
                day("2026-11-25", Some(150), Some(0)),
            ])
            .expect("svg")
        );
    }
}
