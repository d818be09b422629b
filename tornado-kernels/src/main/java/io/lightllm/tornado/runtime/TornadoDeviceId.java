package io.lightllm.tornado.runtime;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A TornadoVM-style device id {@code B:D}: backend number B (its place in {@code device.order} of
 * {@code tornado-config/tornado.properties}) and device number D within that backend.
 * {@link DeviceNumbering} maps it to a device id such as {@code opencl:0:0}.
 */
public record TornadoDeviceId(int backend, int device) {
    private static final Pattern FORM = Pattern.compile("\\s*(\\d{1,6}):(\\d{1,6})\\s*");

    public TornadoDeviceId {
        if (backend < 0 || device < 0) {
            throw new IllegalArgumentException("a TornadoVM device id has non-negative numbers, not " + backend + ":" + device);
        }
    }

    /** Parses {@code B:D}; the only parser of this form, so every flag reads it alike. */
    public static TornadoDeviceId parse(String text) {
        Matcher m = text == null ? null : FORM.matcher(text);
        if (m == null || !m.matches()) {
            throw new IllegalArgumentException("bad TornadoVM device id '" + text + "': expected B:D (backend and device numbers, e.g. 0:0)");
        }
        return new TornadoDeviceId(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)));
    }

    @Override
    public String toString() {
        return backend + ":" + device;
    }
}
