package io.lightllm.server.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.ToDoubleFunction;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The latency-vs-throughput picture of a sweep, drawn with XChart: one point per request rate,
 * output tokens/s on x, and the median and p99 of TTFT, TPOT and end-to-end latency on a log y
 * axis (they span milliseconds to seconds).
 */
public final class SweepPlot {
    private SweepPlot() {
    }

    public static void write(List<Summary> runs, String title, Path png) throws IOException {
        System.setProperty("java.awt.headless", "true"); // draws into an image; no display is needed or wanted
        XYChart chart = new XYChartBuilder().width(900).height(600).title(title)
                .xAxisTitle("output throughput (tokens/s)").yAxisTitle("latency (ms, log scale)").build();
        chart.getStyler().setYAxisLogarithmic(true);
        chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNW);
        double[] x = runs.stream().mapToDouble(Summary::outputThroughput).toArray();
        series(chart, "median TTFT", x, runs, s -> s.ttft().median());
        series(chart, "p99 TTFT", x, runs, s -> s.ttft().p99());
        series(chart, "median TPOT", x, runs, s -> s.tpot().median());
        series(chart, "p99 TPOT", x, runs, s -> s.tpot().p99());
        series(chart, "median E2E", x, runs, s -> s.e2el().median());
        series(chart, "p99 E2E", x, runs, s -> s.e2el().p99());
        BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    }

    private static void series(XYChart chart, String name, double[] x, List<Summary> runs, ToDoubleFunction<Summary> y) {
        double[] ys = runs.stream().mapToDouble(y).toArray();
        for (double v : ys) {
            if (!(v > 0)) {
                return; // a log axis cannot show a missing or zero latency; leave the series out rather than fail the plot
            }
        }
        chart.addSeries(name, x, ys).setMarker(SeriesMarkers.CIRCLE);
    }
}
