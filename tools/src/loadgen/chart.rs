//! A small SVG chart for the bench report: p99 latency (log scale) and server CPU against the
//! number of clients (log scale), one line per server.

use std::fmt::Write as _;

/// One server's points: (clients, p99 ms) and (clients, CPU cores).
pub struct Series {
    pub name: &'static str,
    pub color: &'static str,
    pub p99: Vec<(usize, f64)>,
    pub cpu: Vec<(usize, f64)>,
}

const WIDTH: f64 = 920.0;
const HEIGHT: f64 = 380.0;
const PANEL: f64 = 360.0;
const TOP: f64 = 60.0;
const PLOT_HEIGHT: f64 = 250.0;

/// A panel's axes: where it starts on the page and how values map to it.
struct Panel {
    left: f64,
    x_min: f64,
    x_max: f64,
    y_min: f64,
    y_max: f64,
    y_log: bool,
}

impl Panel {
    fn x(&self, clients: f64) -> f64 {
        let span = (self.x_max.log10() - self.x_min.log10()).max(1e-9);
        self.left + (clients.max(self.x_min).log10() - self.x_min.log10()) / span * PANEL
    }

    fn y(&self, v: f64) -> f64 {
        let fraction = if self.y_log {
            let v = v.max(self.y_min);
            (v.log10() - self.y_min.log10()) / (self.y_max.log10() - self.y_min.log10()).max(1e-9)
        } else {
            (v - self.y_min) / (self.y_max - self.y_min).max(1e-9)
        };
        TOP + PLOT_HEIGHT * (1.0 - fraction.clamp(0.0, 1.0))
    }
}

/// Powers of ten from `lo` to `hi`, for log-scale gridlines.
fn decades(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut v = 10f64.powf(lo.log10().floor());
    while v <= hi * 1.0001 {
        if v >= lo * 0.9999 {
            out.push(v);
        }
        v *= 10.0;
    }
    out
}

fn label(v: f64) -> String {
    if v >= 1000.0 {
        format!("{},{:03}", (v / 1000.0).floor() as u64, (v % 1000.0) as u64)
    } else if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

pub fn render(subtitle: &str, series: &[Series]) -> String {
    let clients: Vec<f64> = series.iter().flat_map(|s| s.p99.iter().map(|(c, _)| *c as f64)).collect();
    let x_min = clients.iter().copied().fold(f64::INFINITY, f64::min).clamp(1.0, 10.0);
    let x_max = clients.iter().copied().fold(0.0, f64::max).max(x_min * 10.0);
    let p99s: Vec<f64> = series.iter().flat_map(|s| s.p99.iter().map(|(_, v)| *v)).collect();
    let p_lo = 10f64.powf(p99s.iter().copied().fold(f64::INFINITY, f64::min).max(0.01).log10().floor());
    let p_hi = 10f64.powf(p99s.iter().copied().fold(0.0, f64::max).max(p_lo * 10.0).log10().ceil());
    let cpu_hi = series.iter().flat_map(|s| s.cpu.iter().map(|(_, v)| *v)).fold(0.0, f64::max).max(0.1);
    let cpu_hi = (cpu_hi * 4.0).ceil() / 4.0;

    let latency = Panel { left: 70.0, x_min, x_max, y_min: p_lo, y_max: p_hi, y_log: true };
    let cpu = Panel { left: 70.0 + PANEL + 110.0, x_min, x_max, y_min: 0.0, y_max: cpu_hi, y_log: false };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="20" font-size="15" text-anchor="middle">Broadcast p99 latency and server CPU as clients grow</text>"#,
        WIDTH / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="38" text-anchor="middle" fill="#555">{subtitle}</text>"##,
        WIDTH / 2.0
    );

    for (panel, title, ticks) in [
        (&latency, "p99 latency (ms, log scale)", decades(p_lo, p_hi)),
        (&cpu, "server CPU (cores)", (0..=4).map(|i| cpu_hi * f64::from(i) / 4.0).collect()),
    ] {
        let bottom = TOP + PLOT_HEIGHT;
        let _ = writeln!(
            svg,
            r##"<rect x="{}" y="{TOP}" width="{PANEL}" height="{PLOT_HEIGHT}" fill="none" stroke="#999"/>"##,
            panel.left
        );
        for t in ticks {
            let y = panel.y(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                panel.left,
                panel.left + PANEL,
                panel.left - 6.0,
                y + 4.0,
                if panel.y_log { label(t) } else { format!("{t:.2}") }
            );
        }
        for c in decades(x_min, x_max) {
            let x = panel.x(c);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{bottom}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                bottom + 16.0,
                label(c)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">clients (log scale)</text>"#,
            panel.left + PANEL / 2.0,
            bottom + 34.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{title}</text>"#,
            panel.left + PANEL / 2.0,
            TOP - 6.0
        );
    }

    for (i, s) in series.iter().enumerate() {
        for (panel, points) in [(&latency, &s.p99), (&cpu, &s.cpu)] {
            let path: Vec<String> =
                points.iter().map(|(c, v)| format!("{:.1},{:.1}", panel.x(*c as f64), panel.y(*v))).collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                path.join(" "),
                s.color
            );
            for (c, v) in points {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"><title>{}: {} clients, {v:.3}</title></circle>"#,
                    panel.x(*c as f64),
                    panel.y(*v),
                    s.color,
                    s.name,
                    c
                );
            }
        }
        let y = HEIGHT - 12.0;
        let x = 90.0 + 160.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{}" width="14" height="4" fill="{}"/><text x="{}" y="{y}">{}</text>"#,
            y - 5.0,
            s.color,
            x + 20.0,
            s.name
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_line_and_a_point_per_figure() {
        let s = Series {
            name: "a",
            color: "#000",
            p99: vec![(10, 1.0), (100, 2.0)],
            cpu: vec![(10, 0.1), (100, 0.2)],
        };
        let svg = render("sub", &[s]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
    }

    #[test]
    fn log_axes_put_decades_evenly() {
        let p = Panel { left: 0.0, x_min: 10.0, x_max: 1000.0, y_min: 1.0, y_max: 100.0, y_log: true };
        assert!((p.x(100.0) - PANEL / 2.0).abs() < 1e-6);
        assert!((p.y(10.0) - (TOP + PLOT_HEIGHT / 2.0)).abs() < 1e-6);
        assert_eq!(decades(1.0, 1000.0), vec![1.0, 10.0, 100.0, 1000.0]);
    }
}
