package io.lightllm.models.parallel;

import io.lightllm.tornado.jvm.JvmDevice;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.Devices;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The devices of {@code --tp N} ranks from a {@code --device} value: {@code jvm} gives N
 * independent JVM devices sharing the cores; a comma list ({@code cuda:0,cuda:1}, or short
 * {@code cuda:0,1}; {@code opencl:0:0,0:1}) names one device per rank; one other device id is
 * shared by all ranks.
 */
public final class RankDevices {
    private RankDevices() {
    }

    public static List<Device> resolve(String deviceSpec, int tp) {
        if (tp < 1) {
            throw new IllegalArgumentException("--tp must be at least 1, got " + tp);
        }
        List<String> ids = ids(deviceSpec);
        if (tp == 1 && ids.size() == 1) {
            return List.of(Devices.get(ids.getFirst()));
        }
        if (ids.size() > 1 && ids.size() != tp) {
            throw new IllegalArgumentException("--device lists " + ids.size() + " devices but --tp is " + tp
                    + ": name one device per rank, or one device for all");
        }
        List<Device> out = new ArrayList<>();
        for (int r = 0; r < tp; r++) {
            String id = ids.size() == 1 ? ids.getFirst() : ids.get(r);
            // every JVM rank gets a device of its own, with its share of the cores
            out.add(id.equals("jvm") ? new JvmDevice(Math.max(1, JvmDevice.defaultThreads() / tp)) : Devices.get(id));
        }
        return out;
    }

    /** The comma list's ids; an item without a backend ({@code 1} in {@code cuda:0,1}) takes the first item's. */
    static List<String> ids(String deviceSpec) {
        List<String> items = Arrays.stream(deviceSpec.split(",")).map(String::trim).toList();
        String first = items.getFirst();
        String backend = first.contains(":") ? first.substring(0, first.indexOf(':') + 1) : "";
        List<String> out = new ArrayList<>();
        for (String item : items) {
            if (item.isEmpty()) {
                throw new IllegalArgumentException("--device '" + deviceSpec + "' has an empty item");
            }
            boolean bare = Character.isDigit(item.charAt(0));
            if (bare && backend.isEmpty()) {
                throw new IllegalArgumentException("--device '" + deviceSpec + "': '" + item + "' names no backend (write cuda:" + item + ")");
            }
            out.add(bare ? backend + item : item);
        }
        return out;
    }
}
