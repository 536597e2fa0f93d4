"""The SVG charts are pure functions: values in, escaped markup out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from greenloop.serve.charts import Point, Series, line_chart, outcome_strip, stacked_bar


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # well-formed XML, so also valid inline SVG


def test_line_chart_plots_a_point_per_value_and_breaks_at_gaps() -> None:
    points = (Point("r1", 1.0), Point("r2", 0.5), Point("r3", None), Point("r4", 0.0, "/runs/r4"))
    svg = _parse(line_chart([Series("pass rate", points)], title="pass rate", highlight="r2"))
    circles = svg.findall(".//circle")
    assert len(circles) == 3  # the gap draws nothing
    assert [c.find("title").text for c in circles] == [
        "pass rate 100%: r1",
        "pass rate 50%: r2",
        "pass rate 0%: r4",
    ]
    # 100 % at the top of the plot, 0 % at the bottom, 50 % half way.
    ys = [float(c.get("cy")) for c in circles]
    assert ys[0] < ys[1] < ys[2]
    assert abs((ys[0] + ys[2]) / 2 - ys[1]) < 0.2
    # The gap splits the line: r1-r2 is drawn, r4 stands alone.
    assert len(svg.findall(".//polyline")) == 1
    assert "highlight" in circles[1].get("class")
    assert svg.find(".//a").get("href") == "/runs/r4"


def test_line_chart_with_nothing_to_measure_says_so() -> None:
    svg = _parse(line_chart([Series("x", (Point("r1", None),))], title="t"))
    assert svg.findall(".//circle") == []
    assert "nothing to measure" in ET.tostring(svg, encoding="unicode")


def test_seconds_scale_to_the_largest_value() -> None:
    svg = _parse(
        line_chart([Series("t", (Point("a", 30.0), Point("b", 60.0)))], title="t", unit="s")
    )
    labels = [t.text for t in svg.findall(".//text") if t.get("class") == "axis"]
    assert labels == ["0.0 s", "30 s", "60 s"]


def test_text_from_the_data_is_escaped() -> None:
    markup = line_chart([Series("<b>", (Point("<script>alert(1)</script>", 1.0),))], title="a & b")
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    _parse(markup)


def test_stacked_bar_widths_follow_the_counts() -> None:
    svg = _parse(stacked_bar([("passed", 30), ("failed", 10), ("skipped", 0)], title="t"))
    rects = svg.findall(".//rect")
    assert [r.find("title").text for r in rects] == ["passed: 30", "failed: 10"]
    widths = [float(r.get("width")) for r in rects]
    assert abs(widths[0] / widths[1] - 3) < 0.01


def test_outcome_strip_has_a_square_per_outcome_oldest_first() -> None:
    svg = _parse(outcome_strip([("passed", "r1"), ("failed", "r2")], title="t"))
    rects = svg.findall(".//rect")
    assert [r.find("title").text for r in rects] == ["r1", "r2"]
    assert float(rects[0].get("x")) < float(rects[1].get("x"))
    assert re.fullmatch(r"#[0-9a-f]{6}", rects[1].get("fill"))


def test_counts_get_whole_axis_labels() -> None:
    svg = _parse(line_chart([Series("n", (Point("a", 1.0), Point("b", 3.0)))], title="t", unit=""))
    labels = [t.text for t in svg.findall(".//text") if t.get("class") == "axis"]
    assert labels == ["0", "2", "4"]
