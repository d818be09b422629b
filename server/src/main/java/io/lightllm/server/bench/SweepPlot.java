package io.lightllm.server.bench;

import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.ToDoubleFunction;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The latency-vs-throughput picture of a sweep, drawn with XChart: one point per request rate,
 * output tokens/s on x, and the median and p99 of TTFT, TPOT and end-to-end latency on a log y
 * axis (they span milliseconds to seconds).
 */
public final class SweepPlot {
    private static final Color TTFT = new Color(0x1f77b4);
    private static final Color TPOT = new Color(0x2ca02c);
    private static final Color E2E = new Color(0xd62728);

    private SweepPlot() {
    }

    public static void write(List<Summary> runs, String title, Path png) throws IOException {
        System.setProperty("java.awt.headless", "true"); // draws into an image; no display is needed or wanted
        XYChart chart = new XYChartBuilder().width(1000).height(600).title(title)
                .xAxisTitle("output throughput (tokens/s)").yAxisTitle("latency (ms, log scale)").build();
        chart.getStyler().setYAxisLogarithmic(true);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        double[] x = runs.stream().mapToDouble(Summary::outputThroughput).toArray();
        // one colour per latency, solid for the median and dashed for p99
        series(chart, "median TTFT", x, runs, s -> s.ttft().median(), TTFT, SeriesLines.SOLID);
        series(chart, "p99 TTFT", x, runs, s -> s.ttft().p99(), TTFT, SeriesLines.DASH_DASH);
        series(chart, "median TPOT", x, runs, s -> s.tpot().median(), TPOT, SeriesLines.SOLID);
        series(chart, "p99 TPOT", x, runs, s -> s.tpot().p99(), TPOT, SeriesLines.DASH_DASH);
        series(chart, "median E2E", x, runs, s -> s.e2el().median(), E2E, SeriesLines.SOLID);
        series(chart, "p99 E2E", x, runs, s -> s.e2el().p99(), E2E, SeriesLines.DASH_DASH);
        BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    private static void series(XYChart chart, String name, double[] x, List<Summary> runs, ToDoubleFunction<Summary> y, Color color,
                               BasicStroke line) {
        double[] ys = runs.stream().mapToDouble(y).toArray();
        for (double v : ys) {
            if (!(v > 0)) {
                return; // a log axis cannot show a missing or zero latency; leave the series out rather than fail the plot
            }
        }
        XYSeries s = chart.addSeries(name, x, ys);
        s.setMarker(SeriesMarkers.CIRCLE);
        s.setLineColor(color);
        s.setMarkerColor(color);
        s.setLineStyle(line);
    }
}
