package io.lightllm.tornado.runtime;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * TornadoVM's numbering of devices, {@code B:D}, over the backends in {@code device.order}: B is
 * a backend's place in that order, D a device's place in the backend's own list (for OpenCL,
 * every platform's devices one after another, as TornadoVM flattens them). An unavailable
 * backend keeps its B but has no devices, so ids are the same on every machine.
 */
public final class DeviceNumbering {
    private final List<Backend> backends;

    /** @param backends in {@code device.order}: index = B */
    DeviceNumbering(List<Backend> backends) {
        this.backends = List.copyOf(backends);
    }

    public List<Backend> backends() {
        return backends;
    }

    /** {@link #deviceId(TornadoDeviceId)} of the text {@code B:D}; a malformed one also gets the valid ids. */
    public String deviceId(String tornadoId) {
        TornadoDeviceId id;
        try {
            id = TornadoDeviceId.parse(tornadoId);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(e.getMessage() + "; valid ids: " + validIds(), e);
        }
        return deviceId(id);
    }

    /** The device id ({@code --device}'s form) of {@code id}; throws, listing the valid ids, when it names no device here. */
    public String deviceId(TornadoDeviceId id) {
        if (id.backend() >= backends.size()) {
            throw noDevice(id, "there is no backend " + id.backend() + " (" + IntStream.range(0, backends.size())
                    .mapToObj(i -> i + ": " + backends.get(i).name()).collect(Collectors.joining(", ")) + ")");
        }
        Backend b = backends.get(id.backend());
        Optional<String> unavailable = b.unavailableReason();
        if (unavailable.isPresent()) {
            throw noDevice(id, "backend " + id.backend() + " is " + b.name() + ", which is unavailable here: " + unavailable.get());
        }
        List<DeviceInfo> devices = b.devices();
        if (id.device() >= devices.size()) {
            throw noDevice(id, "backend " + id.backend() + " (" + b.name() + ") has " + devices.size() + " device(s)");
        }
        return devices.get(id.device()).id();
    }

    /** The TornadoVM id of a listed device ({@code opencl:0:0} gives {@code 0:0}), empty for an id no backend lists. */
    public Optional<TornadoDeviceId> tornadoId(String deviceId) {
        for (int b = 0; b < backends.size(); b++) {
            List<DeviceInfo> devices = devicesOf(backends.get(b));
            for (int d = 0; d < devices.size(); d++) {
                if (devices.get(d).id().equals(deviceId)) {
                    return Optional.of(new TornadoDeviceId(b, d));
                }
            }
        }
        return Optional.empty();
    }

    /** Every device usable here, in both forms: {@code 0:0 = opencl:0:0, 2:0 = jvm}. */
    public String validIds() {
        List<String> ids = new ArrayList<>();
        for (int b = 0; b < backends.size(); b++) {
            List<DeviceInfo> devices = devicesOf(backends.get(b));
            for (int d = 0; d < devices.size(); d++) {
                ids.add(b + ":" + d + " = " + devices.get(d).id());
            }
        }
        return String.join(", ", ids);
    }

    private static List<DeviceInfo> devicesOf(Backend b) {
        return b.unavailableReason().isPresent() ? List.of() : b.devices();
    }

    private IllegalArgumentException noDevice(TornadoDeviceId id, String why) {
        return new IllegalArgumentException("no device " + id + ": " + why + "; valid ids: " + validIds());
    }
}
