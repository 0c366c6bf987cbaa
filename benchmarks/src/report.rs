//! Markdown tables and SVG charts of the results.

use std::fmt::Write as _;

/// A markdown table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", self.headers.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(self.headers.len()));
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}

/// One group of bars (e.g. one payment latency) with a value per series.
pub struct BarGroup {
    pub label: String,
    pub values: Vec<f64>,
}

/// A grouped bar chart on a log10 axis, as SVG: series side by side in each group, each bar
/// labelled with its value.
pub fn log_bar_chart(title: &str, unit: &str, series: &[&str], groups: &[BarGroup]) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 360.0;
    const LEFT: f64 = 70.0;
    const BOTTOM: f64 = 60.0;
    const TOP: f64 = 50.0;
    const COLOURS: [&str; 4] = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1"];
    let values = groups.iter().flat_map(|g| g.values.iter().copied());
    let max = values.clone().fold(1.0_f64, f64::max);
    let min = values.filter(|v| *v > 0.0).fold(max, f64::min);
    let (low, high) = (
        min.log10().floor(),
        max.log10().ceil().max(min.log10().floor() + 1.0),
    );
    let plot_height = HEIGHT - TOP - BOTTOM;
    let y =
        |v: f64| TOP + plot_height * (1.0 - (v.max(10f64.powf(low)).log10() - low) / (high - low));
    let group_width = (WIDTH - LEFT - 20.0) / groups.len().max(1) as f64;
    let bar_width = group_width * 0.7 / series.len().max(1) as f64;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    let mut decade = low;
    while decade <= high {
        let v = 10f64.powf(decade);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{} {unit}</text>"##,
            WIDTH - 20.0,
            LEFT - 6.0,
            y(v) + 4.0,
            number(v),
            y = y(v)
        );
        decade += 1.0;
    }
    for (g, group) in groups.iter().enumerate() {
        let x0 = LEFT + g as f64 * group_width + group_width * 0.15;
        for (s, value) in group.values.iter().enumerate() {
            let x = x0 + s as f64 * bar_width;
            let top = y(*value);
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                bar_width - 2.0,
                HEIGHT - BOTTOM - top,
                COLOURS[s % COLOURS.len()],
                x + bar_width / 2.0,
                top - 3.0,
                number(*value)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x0 + bar_width * series.len() as f64 / 2.0,
            HEIGHT - BOTTOM + 18.0,
            escape(&group.label)
        );
    }
    for (s, name) in series.iter().enumerate() {
        let x = LEFT + 10.0 + s as f64 * 200.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            HEIGHT - 24.0,
            COLOURS[s % COLOURS.len()],
            x + 16.0,
            HEIGHT - 14.0,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_as_markdown() {
        let mut table = Table::new(&["a", "b"]);
        table.row(vec!["1".into(), "2".into()]);
        assert_eq!(table.markdown(), "| a | b |\n|---|---|\n| 1 | 2 |\n");
    }

    #[test]
    fn charts_have_a_bar_per_value() {
        let svg = log_bar_chart(
            "t",
            "ms",
            &["x", "y"],
            &[
                BarGroup {
                    label: "g1".into(),
                    values: vec![1.0, 1000.0],
                },
                BarGroup {
                    label: "g2".into(),
                    values: vec![5.0, 5000.0],
                },
            ],
        );
        assert_eq!(
            svg.matches("<rect x=").count(),
            4 + 2,
            "4 bars and 2 legend keys"
        );
        assert!(svg.contains(">5000<"));
    }
}
