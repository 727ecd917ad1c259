//! Charts as inline SVG, drawn here so a report needs nothing from the network: axes with
//! their units, linear, logarithmic or named-category scales, lines or points per series,
//! marked points (a headline, a saturation point), and an HTML legend under the plot that
//! stays readable however many series there are.
//!
//! Every series is a `<g class="series" data-series=NAME data-points=N>` holding one
//! `<circle>` or path vertex per point, so a test (or a user's script) can read what a chart
//! shows from the DOM.

use std::fmt::Write;

use super::escape::escape;

/// Distinct colours for series (Okabe-Ito, readable by colour-blind readers), cycled.
pub const PALETTE: [&str; 8] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000",
];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 56.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Scale {
    /// From zero (or below, for negative data): rates and latencies compare honestly.
    Linear,
    /// Linear over the data's own range: recall between 0.9 and 1 stays readable.
    Fit,
    /// Base 10; points at or below 0 are left out.
    Log,
    /// x only: point i sits at category i.
    Category(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Axis {
    /// The quantity and its unit: "TTFT (ms)".
    pub label: String,
    pub scale: Scale,
}

impl Axis {
    pub fn linear(label: &str) -> Axis {
        Axis {
            label: label.into(),
            scale: Scale::Linear,
        }
    }

    pub fn fit(label: &str) -> Axis {
        Axis {
            label: label.into(),
            scale: Scale::Fit,
        }
    }

    pub fn log(label: &str) -> Axis {
        Axis {
            label: label.into(),
            scale: Scale::Log,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// Points joined by a line, with a dot at each.
    LineAndPoints,
    /// A line only (CDFs: many points).
    Line,
    /// Dots only.
    Points,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Index into the palette.
    pub colour: usize,
    /// Dashed: a baseline or a second run beside the first.
    pub dashed: bool,
    pub style: Style,
}

/// A point called out with a ring and a label.
#[derive(Debug, Clone)]
pub struct Mark {
    pub x: f64,
    pub y: f64,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// Stable id, for links and tests: "inference-ttft-cdf".
    pub id: String,
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub marks: Vec<Mark>,
    /// Under the chart: what it shows and how to read it.
    pub caption: Option<String>,
}

/// One axis mapped onto pixels.
struct Mapping {
    scale: Scale,
    lo: f64,
    hi: f64,
    /// Linear scales: the distance between ticks (lo and hi are multiples of it).
    step: f64,
    from: f64,
    to: f64,
}

impl Mapping {
    fn new(scale: &Scale, values: &[f64], from: f64, to: f64) -> Mapping {
        let mut step = 1.0;
        let (lo, hi) = match scale {
            Scale::Category(names) => (-0.5, names.len().max(1) as f64 - 0.5),
            Scale::Log => {
                let mut v = values.iter().copied().filter(|v| *v > 0.0);
                let first = v.next().unwrap_or(1.0);
                let (lo, hi) = v.fold((first, first), |(a, b), x| (a.min(x), b.max(x)));
                let (lo, hi) = (10f64.powf(lo.log10().floor()), hi);
                let hi = if hi <= lo { lo * 10.0 } else { hi };
                (lo, 10f64.powf(hi.log10().ceil()).max(hi))
            }
            Scale::Linear | Scale::Fit => {
                let first = values.first().copied().unwrap_or(0.0);
                let (lo, hi) = values
                    .iter()
                    .fold((first, first), |(a, b), x| (a.min(*x), b.max(*x)));
                let lo = if *scale == Scale::Linear && lo >= 0.0 {
                    0.0
                } else {
                    lo - (hi - lo).max(1e-3) * 0.05
                };
                let hi = if hi <= lo { lo + 1.0 } else { hi };
                step = nice_step((hi - lo) / 5.0);
                ((lo / step).floor() * step, (hi / step).ceil() * step)
            }
        };
        Mapping {
            scale: scale.clone(),
            lo,
            hi,
            step,
            from,
            to,
        }
    }

    fn position(&self, v: f64) -> Option<f64> {
        let share = match self.scale {
            Scale::Log => {
                if v <= 0.0 {
                    return None;
                }
                (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
            }
            _ => (v - self.lo) / (self.hi - self.lo),
        };
        share
            .is_finite()
            .then_some(self.from + share * (self.to - self.from))
    }

    /// Tick values and their labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        match &self.scale {
            Scale::Category(names) => names
                .iter()
                .enumerate()
                .map(|(i, n)| (i as f64, n.clone()))
                .collect(),
            Scale::Log => {
                let (a, b) = (
                    self.lo.log10().round() as i32,
                    self.hi.log10().round() as i32,
                );
                let decades = (b - a).max(1);
                let mut ticks = Vec::new();
                for e in a..=b {
                    let multiples: &[f64] = if decades <= 2 {
                        &[1.0, 2.0, 5.0]
                    } else {
                        &[1.0]
                    };
                    for m in multiples {
                        let v = m * 10f64.powi(e);
                        if v >= self.lo * 0.999 && v <= self.hi * 1.001 {
                            ticks.push((v, number(v)));
                        }
                    }
                }
                ticks
            }
            Scale::Linear | Scale::Fit => {
                let count = ((self.hi - self.lo) / self.step).round() as usize;
                (0..=count)
                    .map(|i| {
                        // From the index, not by adding: 0.1 + 0.2 must print as 0.3.
                        let v = self.lo + i as f64 * self.step;
                        let v = if v.abs() < self.step * 1e-9 { 0.0 } else { v };
                        (v, number(v))
                    })
                    .collect()
            }
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * power)
}

/// A tick label: at most three significant digits, k/M for thousands and millions.
pub fn number(v: f64) -> String {
    let a = v.abs();
    let (value, suffix) = if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if value == 0.0 {
        0
    } else {
        (2 - value.abs().log10().floor() as i32).clamp(0, 6) as usize
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{suffix}")
}

impl Chart {
    pub fn new(id: &str, title: &str, x: Axis, y: Axis) -> Chart {
        Chart {
            id: id.into(),
            title: title.into(),
            x,
            y,
            series: Vec::new(),
            marks: Vec::new(),
            caption: None,
        }
    }

    pub fn has_data(&self) -> bool {
        self.series.iter().any(|s| !s.points.is_empty())
    }

    /// The chart as a `<figure>`: title, SVG plot, legend, caption. A chart without data says
    /// so instead of drawing empty axes.
    pub fn html(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<figure class="chart" id="{id}" data-chart="{id}"><figcaption class="title">{title}</figcaption>"#,
            id = escape(&self.id),
            title = escape(&self.title)
        );
        if self.has_data() {
            out += &self.svg();
            out += &self.legend();
        } else {
            out += r#"<p class="empty">no data to draw</p>"#;
        }
        if let Some(caption) = &self.caption {
            let _ = write!(out, r#"<p class="caption">{}</p>"#, escape(caption));
        }
        out += "</figure>";
        out
    }

    fn svg(&self) -> String {
        let all = |f: fn(&(f64, f64)) -> f64| -> Vec<f64> {
            self.series
                .iter()
                .flat_map(|s| s.points.iter().map(f))
                .chain(self.marks.iter().map(|m| f(&(m.x, m.y))))
                .filter(|v| v.is_finite())
                .collect()
        };
        let xm = Mapping::new(&self.x.scale, &all(|p| p.0), LEFT, WIDTH - RIGHT);
        let x_ticks = xm.ticks();
        // Many category names: written downwards, with room made below the plot for them.
        let names = x_ticks
            .iter()
            .map(|(_, l)| l.chars().count().min(MAX_NAME))
            .max();
        let vertical = matches!(xm.scale, Scale::Category(_))
            && x_ticks.len() as f64 * 7.0 * names.unwrap_or(0) as f64 > WIDTH - LEFT - RIGHT;
        let extra = if vertical {
            names.unwrap_or(0) as f64 * 6.2 - 18.0
        } else {
            0.0
        };
        let frame = Frame {
            height: HEIGHT + extra.max(0.0),
            bottom: BOTTOM + extra.max(0.0),
        };
        let ym = Mapping::new(
            &self.y.scale,
            &all(|p| p.1),
            frame.height - frame.bottom,
            TOP,
        );
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg viewBox="0 0 {WIDTH} {:.0}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
            frame.height,
            escape(&self.title)
        );
        self.axes(&mut s, &xm, &ym, x_ticks, vertical, &frame);
        for series in &self.series {
            draw_series(&mut s, series, &xm, &ym);
        }
        for mark in &self.marks {
            if let (Some(x), Some(y)) = (xm.position(mark.x), ym.position(mark.y)) {
                let anchor = if x > WIDTH * 0.7 { "end" } else { "start" };
                let dx = if anchor == "end" { -9.0 } else { 9.0 };
                let _ = write!(
                    s,
                    r##"<g class="mark"><circle cx="{x:.1}" cy="{y:.1}" r="7" fill="none" stroke="#d00" stroke-width="2"/><text x="{:.1}" y="{:.1}" text-anchor="{anchor}" class="mark-label">{}</text></g>"##,
                    x + dx,
                    y - 9.0,
                    escape(&mark.label)
                );
            }
        }
        s += "</svg>";
        s
    }

    fn axes(
        &self,
        s: &mut String,
        xm: &Mapping,
        ym: &Mapping,
        x_ticks: Vec<(f64, String)>,
        vertical: bool,
        frame: &Frame,
    ) {
        let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, frame.height - frame.bottom, TOP);
        let _ = write!(
            s,
            r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="#fff" stroke="#999"/>"##,
            x1 - x0,
            y0 - y1
        );
        for (v, label) in ym.ticks() {
            if let Some(y) = ym.position(v) {
                let _ = write!(
                    s,
                    r##"<line x1="{x0}" x2="{x1}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
                    x0 - 5.0,
                    y + 4.0,
                    escape(&label)
                );
            }
        }
        for (v, label) in x_ticks {
            if let Some(x) = xm.position(v) {
                let _ = write!(
                    s,
                    r##"<line x1="{x:.1}" x2="{x:.1}" y1="{y1}" y2="{y0}" stroke="#eee"/>"##
                );
                if vertical {
                    let _ = write!(
                        s,
                        r#"<text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="end" class="tick">{}</text>"#,
                        x + 4.0,
                        y0 + 8.0,
                        escape(&shorten(&label))
                    );
                } else {
                    let _ = write!(
                        s,
                        r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
                        y0 + 15.0,
                        escape(&label)
                    );
                }
            }
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis-label">{}</text>"#,
            (x0 + x1) / 2.0,
            frame.height - 6.0,
            escape(&self.x.label)
        );
        let _ = write!(
            s,
            r#"<text transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle" class="axis-label">{}</text>"#,
            (y0 + y1) / 2.0,
            escape(&self.y.label)
        );
    }

    fn legend(&self) -> String {
        let mut out = String::from(r#"<ul class="legend">"#);
        for series in &self.series {
            let _ = write!(
                out,
                r#"<li><svg width="26" height="10"><line x1="1" y1="5" x2="25" y2="5" stroke="{}" stroke-width="3"{}/></svg>{}</li>"#,
                PALETTE[series.colour % PALETTE.len()],
                if series.dashed {
                    r#" stroke-dasharray="5,3""#
                } else {
                    ""
                },
                escape(&series.name)
            );
        }
        out += "</ul>";
        out
    }
}

/// The drawing's height and the room under the plot (more when names run downwards).
struct Frame {
    height: f64,
    bottom: f64,
}

/// Category names longer than this are cut (the tables below a chart have them whole).
const MAX_NAME: usize = 30;

fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_NAME {
        return name.to_string();
    }
    let head: String = name.chars().take(MAX_NAME - 1).collect();
    format!("{head}…")
}

fn draw_series(s: &mut String, series: &Series, xm: &Mapping, ym: &Mapping) {
    let colour = PALETTE[series.colour % PALETTE.len()];
    let pixels: Vec<(f64, f64)> = series
        .points
        .iter()
        .filter_map(|(x, y)| Some((xm.position(*x)?, ym.position(*y)?)))
        .collect();
    let _ = write!(
        s,
        r#"<g class="series" data-series="{}" data-points="{}">"#,
        escape(&series.name),
        pixels.len()
    );
    if series.style != Style::Points && pixels.len() > 1 {
        let mut d = String::new();
        for (i, (x, y)) in pixels.iter().enumerate() {
            let _ = write!(d, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { " L" });
        }
        let _ = write!(
            s,
            r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"{}/>"#,
            if series.dashed {
                r#" stroke-dasharray="6,4""#
            } else {
                ""
            }
        );
    }
    if series.style != Style::Line || pixels.len() == 1 {
        for (x, y) in &pixels {
            let _ = write!(
                s,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{}" stroke="{colour}" stroke-width="1.5"/>"##,
                if series.dashed { "#fff" } else { colour }
            );
        }
    }
    s.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers_that_cover_the_data() {
        let m = Mapping::new(&Scale::Linear, &[3.0, 97.0], 0.0, 100.0);
        let ticks: Vec<f64> = m.ticks().into_iter().map(|t| t.0).collect();
        assert_eq!(ticks, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let log = Mapping::new(&Scale::Log, &[0.3, 40.0], 0.0, 100.0);
        let labels: Vec<String> = log.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(labels, vec!["0.1", "1", "10", "100"]);
        assert_eq!(number(12_500.0), "12.5k");
        assert_eq!(number(0.0125), "0.0125");
        assert_eq!(number(2_000_000.0), "2M");
    }

    #[test]
    fn a_chart_holds_every_point_and_escapes_names() {
        let mut chart = Chart::new(
            "t",
            "<b>title</b>",
            Axis::log("x (ms)"),
            Axis::linear("y (%)"),
        );
        chart.series.push(Series {
            name: "<script>alert(1)</script>".into(),
            points: vec![(1.0, 10.0), (10.0, 50.0), (0.0, 60.0)],
            colour: 0,
            dashed: false,
            style: Style::LineAndPoints,
        });
        let html = chart.html();
        assert!(
            html.contains(r#"data-points="2""#),
            "a point at 0 has no place on a log axis"
        );
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(html.contains("x (ms)") && html.contains("y (%)"));
        let empty = Chart::new("e", "nothing", Axis::linear("a"), Axis::linear("b")).html();
        assert!(empty.contains("no data to draw") && !empty.contains("<svg"));
    }
}
