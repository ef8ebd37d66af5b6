//! `jamsocket-bench chart`: the broadcast results of a suite run as one SVG, two panels of
//! grouped bars (one group per scenario, one bar per server): deliveries/s, and round-trip
//! latency with each server's bar split into p50 (solid) and p99 (light).

use crate::broadcast_summary::{BroadcastSummary, Cell};
use anyhow::Context;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::{RangedCoordf64, RangedCoordi32};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ChartArgs {
    /// The suite's results: the JSON array bench/suite.py writes (bench/results/latest.json).
    pub input: PathBuf,
    /// Where to write the SVG (bench/results/latest.svg).
    pub output: PathBuf,
}

const SIZE: (u32, u32) = (1100, 900);
const HEADER_HEIGHT: u32 = 110;
const FONT: &str = "sans-serif";
/// The width of one scenario's group of bars, in x units.
const GROUP: i32 = 1000;
/// Share of a group's width that its bars take.
const GROUP_WIDTH: f64 = 0.8;
/// Share of a bar's slot left empty, half on each side.
const BAR_GAP: f64 = 0.12;
/// Head room above the tallest bar for its value label.
const HEAD_ROOM: f64 = 1.12;
const GRID: RGBColor = RGBColor(226, 226, 226);
const MUTED: RGBColor = RGBColor(90, 90, 90);

pub fn run(args: &ChartArgs) -> anyhow::Result<()> {
    let json = std::fs::read_to_string(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?;
    let summary = BroadcastSummary::from_json(&json)
        .with_context(|| format!("charting {}", args.input.display()))?;
    let source = args.input.file_name().map_or_else(
        || args.input.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let svg = draw(&summary, &source)?;
    std::fs::write(&args.output, svg)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(())
}

/// The whole chart as SVG text; `source` names the results file in the subtitle.
pub fn draw(summary: &BroadcastSummary, source: &str) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (header, panels) = root.split_vertically(HEADER_HEIGHT);
        draw_header(&header, summary, source)?;
        let (top, bottom) = panels.split_vertically((SIZE.1 - HEADER_HEIGHT) / 2);
        draw_throughput(&top, summary)?;
        draw_latency(&bottom, summary)?;
        root.present()?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Title, subtitle and the legend shared by both panels.
fn draw_header(area: &Area, summary: &BroadcastSummary, source: &str) -> anyhow::Result<()> {
    let title = font_desc(24).style(FontStyle::Bold);
    area.draw(&Text::new("Jamsocket broadcast benchmark", (24, 16), title))?;
    let mut subtitle = format!(
        "bench/suite.py, {source}: medians of {} run(s) per bar",
        summary.runs_per_cell()
    );
    if let Some(bytes) = summary.payload_bytes {
        subtitle.push_str(&format!(", {bytes}-byte messages"));
    }
    subtitle.push_str("; server and load generator on one machine (loopback)");
    area.draw(&Text::new(subtitle, (24, 50), font(14).color(&MUTED)))?;

    let entry = font(14);
    let mut x = 24;
    let y = 82;
    for (index, server) in summary.servers.iter().enumerate() {
        let color = server_color(server, index);
        area.draw(&Rectangle::new(
            [(x, y - 7), (x + 16, y + 7)],
            color.filled(),
        ))?;
        let text = server_description(server);
        area.draw(&Text::new(
            text.clone(),
            (x + 22, y),
            entry.clone().pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += 22 + text_width(&text, 14) + 32;
    }
    Ok(())
}

fn draw_throughput(area: &Area, summary: &BroadcastSummary) -> anyhow::Result<()> {
    let top = summary.max_deliveries_per_sec() * HEAD_ROOM;
    let caption = "Deliveries per second (higher is better)";
    let mut chart = panel(area, summary, caption, top)?;
    configure_mesh(&mut chart, summary, "deliveries/s", &|y| si(*y))?;
    let label = font(12);
    for (index, server) in summary.servers.iter().enumerate() {
        let color = server_color(server, index);
        for (x0, x1, cell) in bars(summary, index) {
            let value = cell.deliveries_per_sec;
            chart.draw_series([Rectangle::new([(x0, 0.0), (x1, value)], color.filled())])?;
            let at = ((x0 + x1) / 2, value);
            draw_label(&mut chart, si(value), at, -4, &label, VPos::Bottom)?;
        }
    }
    Ok(())
}

fn draw_latency(area: &Area, summary: &BroadcastSummary) -> anyhow::Result<()> {
    let top = summary.max_p99_ms() * HEAD_ROOM;
    let caption = "Round-trip latency: p50 solid, p99 light (lower is better)";
    let mut chart = panel(area, summary, caption, top)?;
    configure_mesh(&mut chart, summary, "round trip (ms)", &|y| {
        three_digits(*y)
    })?;
    let label = font(12);
    for (index, server) in summary.servers.iter().enumerate() {
        let color = server_color(server, index);
        for (x0, x1, cell) in bars(summary, index) {
            // Each server's bar is split in two: p50 solid, then p99 light and outlined.
            let middle = (x0 + x1) / 2;
            let (p50, p99) = ((x0, middle - 2), (middle + 2, x1));
            chart.draw_series([
                Rectangle::new([(p50.0, 0.0), (p50.1, cell.p50_ms)], color.filled()),
                Rectangle::new(
                    [(p99.0, 0.0), (p99.1, cell.p99_ms)],
                    color.mix(0.3).filled(),
                ),
                Rectangle::new([(p99.0, 0.0), (p99.1, cell.p99_ms)], color.stroke_width(1)),
            ])?;
            for ((left, right), value) in [(p50, cell.p50_ms), (p99, cell.p99_ms)] {
                let at = ((left + right) / 2, value);
                draw_label(
                    &mut chart,
                    three_digits(value),
                    at,
                    -4,
                    &label,
                    VPos::Bottom,
                )?;
            }
        }
    }
    Ok(())
}

type Panel<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<WithKeyPoints<RangedCoordi32>, RangedCoordf64>>;

/// A panel with a [`GROUP`] of x per scenario (labelled at its middle) and y from 0 to `top`.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    summary: &BroadcastSummary,
    caption: &str,
    top: f64,
) -> anyhow::Result<Panel<'a, 'b>> {
    let groups = i32::try_from(summary.scenarios.len()).context("too many scenarios")?;
    let middles = (0..groups).map(|i| i * GROUP + GROUP / 2).collect();
    let top = if top > 0.0 { top } else { 1.0 };
    Ok(ChartBuilder::on(area)
        .caption(caption, font_desc(17).style(FontStyle::Bold))
        .margin_left(16)
        .margin_right(28)
        .margin_top(8)
        .margin_bottom(8)
        .x_label_area_size(52)
        .y_label_area_size(84)
        .build_cartesian_2d((0..groups * GROUP).with_key_points(middles), 0.0..top)?)
}

fn configure_mesh(
    chart: &mut Panel,
    summary: &BroadcastSummary,
    y_desc: &str,
    y_format: &dyn Fn(&f64) -> String,
) -> anyhow::Result<()> {
    let x_format = |x: &i32| {
        let group = usize::try_from(x / GROUP).unwrap_or(usize::MAX);
        summary.scenarios.get(group).cloned().unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_labels(6)
        .y_max_light_lines(0)
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .x_label_formatter(&x_format)
        .y_label_formatter(y_format)
        .label_style(font(13))
        .axis_desc_style(font(14))
        .x_desc("rooms x clients per room x messages per client")
        .y_desc(y_desc)
        .draw()?;
    Ok(())
}

/// Where each bar of server number `server` goes (left and right x) and its values.
fn bars(summary: &BroadcastSummary, server: usize) -> impl Iterator<Item = (i32, i32, Cell)> + '_ {
    let servers = summary.servers.len();
    summary
        .cells
        .iter()
        .enumerate()
        .filter_map(move |(scenario, row)| {
            let cell = row.get(server).copied().flatten()?;
            let (x0, x1) = bar_span(scenario, server, servers);
            Some((x0, x1, cell))
        })
}

/// The x range of bar `server` (of `servers`) in the group of scenario `scenario`, which
/// spans `scenario * GROUP ..= (scenario + 1) * GROUP`: the bars share the middle
/// [`GROUP_WIDTH`] of it.
fn bar_span(scenario: usize, server: usize, servers: usize) -> (i32, i32) {
    let group = f64::from(GROUP);
    let slot = group * GROUP_WIDTH / servers.max(1) as f64;
    let left = scenario as f64 * group + group * (1.0 - GROUP_WIDTH) / 2.0 + slot * server as f64;
    let x = |at: f64| at.round() as i32;
    (
        x(left + slot * BAR_GAP / 2.0),
        x(left + slot * (1.0 - BAR_GAP / 2.0)),
    )
}

/// `text` centred on `at`, `dy` pixels off it, hanging from or standing on that point.
fn draw_label(
    chart: &mut Panel,
    text: String,
    at: (i32, f64),
    dy: i32,
    style: &TextStyle,
    anchor: VPos,
) -> anyhow::Result<()> {
    let style = style.pos(Pos::new(HPos::Center, anchor));
    chart.draw_series([EmptyElement::at(at) + Text::new(text, (0, dy), style)])?;
    Ok(())
}

/// Text of `px` pixels in the SVG.
fn font(px: i32) -> TextStyle<'static> {
    font_desc(px).into()
}

/// A font of `px` pixels in the SVG (the SVG backend writes sizes divided by 1.24).
fn font_desc(px: i32) -> FontDesc<'static> {
    (FONT, f64::from(px) * 1.24).into_font()
}

/// About how wide `text` is in a sans-serif font of `size` pixels. (Plotters' own estimate
/// without a font file is generous by a third.)
fn text_width(text: &str, size: i32) -> i32 {
    let chars = i32::try_from(text.chars().count()).unwrap_or(i32::MAX);
    chars.saturating_mul(size) / 2
}

/// Our servers in the colours people know them by; anything else in a neutral palette.
fn server_color(server: &str, index: usize) -> RGBColor {
    const OTHERS: [RGBColor; 3] = [
        RGBColor(70, 110, 170),
        RGBColor(150, 150, 150),
        RGBColor(190, 60, 90),
    ];
    match server {
        "native" => RGBColor(214, 106, 29),
        "wasm" => RGBColor(101, 79, 240),
        "node" => RGBColor(63, 135, 58),
        _ => OTHERS[index % OTHERS.len()],
    }
}

fn server_description(server: &str) -> String {
    match server {
        "native" => "native (Rust service)".to_string(),
        "wasm" => "wasm (same service on wasmtime)".to_string(),
        "node" => "node (Node.js + ws baseline)".to_string(),
        other => other.to_string(),
    }
}

/// A count with a k/M suffix and three significant digits: `1.52M`, `391k`, `82.7k`, `950`.
fn si(value: f64) -> String {
    if value.abs() >= 1e6 {
        format!("{}M", three_digits(value / 1e6))
    } else if value.abs() >= 1e3 {
        format!("{}k", three_digits(value / 1e3))
    } else {
        three_digits(value)
    }
}

/// Three significant digits (at least the integer part), without trailing zeros.
fn three_digits(value: f64) -> String {
    let decimals = match value.abs() {
        v if v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_with_three_significant_digits() {
        assert_eq!(si(1_520_687.0), "1.52M");
        assert_eq!(si(1_500_000.0), "1.5M");
        assert_eq!(si(391_015.0), "391k");
        assert_eq!(si(82_722.0), "82.7k");
        assert_eq!(si(80_000.0), "80k");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(0.0), "0");
        assert_eq!(three_digits(5.5), "5.5");
        assert_eq!(three_digits(0.24), "0.24");
        assert_eq!(three_digits(18.35), "18.4");
        assert_eq!(three_digits(202.0), "202");
        assert_eq!(three_digits(50.0), "50");
        assert_eq!(three_digits(100.0), "100");
    }

    #[test]
    fn bars_of_a_group_sit_side_by_side_inside_it() {
        for servers in 1..=4 {
            for scenario in 0..3 {
                let spans: Vec<_> = (0..servers)
                    .map(|server| bar_span(scenario, server, servers))
                    .collect();
                let start = scenario as i32 * GROUP;
                assert!(spans[0].0 > start, "{spans:?}");
                assert!(spans[servers - 1].1 < start + GROUP, "{spans:?}");
                for pair in spans.windows(2) {
                    assert!(pair[0].1 < pair[1].0, "{spans:?}");
                }
                for (x0, x1) in &spans {
                    assert!(x1 - x0 > GROUP / 10, "{spans:?}");
                }
                // Centred in the group.
                let middle = (spans[0].0 + spans[servers - 1].1) / 2;
                assert!((middle - (start + GROUP / 2)).abs() <= 1, "{spans:?}");
            }
        }
    }

    #[test]
    fn draws_every_scenario_server_and_value() {
        let run = |label: &str, server: &str, dps: f64, p50_us: u64, p99_us: u64| {
            serde_json::json!({
                "scenario": "broadcast", "label": label, "server": server,
                "deliveries_per_sec": dps, "round_trip": {"p50_us": p50_us, "p99_us": p99_us}
            })
        };
        let json = serde_json::json!([
            run("1 room x 100 clients", "native", 1_520_687.0, 5_500, 18_300),
            run("1 room x 100 clients", "node", 140_175.0, 68_200, 102_900),
            run(
                "1000 rooms x 2 clients",
                "native",
                82_722.0,
                23_700,
                126_500
            ),
            run("1000 rooms x 2 clients", "node", 80_542.0, 46_500, 79_100),
        ]);
        let summary = BroadcastSummary::from_json(&json.to_string()).unwrap();
        let svg = draw(&summary, "latest.json").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        for text in summary.scenarios.iter().chain(&summary.servers) {
            assert!(svg.contains(text.as_str()), "{text} missing");
        }
        let first = summary.cells[0][0].unwrap();
        assert!(svg.contains(&si(first.deliveries_per_sec)));
        assert!(svg.contains(&three_digits(first.p99_ms)));
        assert!(svg.contains("deliveries/s") && svg.contains("round trip (ms)"));
    }
}
