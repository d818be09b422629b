package io.lightllm.cli;

import io.lightllm.tornado.runtime.Backend;
import io.lightllm.tornado.runtime.DeviceInfo;
import io.lightllm.tornado.runtime.DeviceNumbering;
import io.lightllm.tornado.runtime.Devices;
import java.util.List;

/**
 * {@code lightllm devices}: every device of every backend, and why a backend is unavailable. Like
 * TornadoVM's {@code tornado --devices}, each device line starts with its id {@code B:D} and marks
 * the default device; the next column is the same device's {@code --device} value.
 */
final class DevicesCommand implements Main.Command {
    @Override
    public String help(String subcommand) {
        return """
                usage: lightllm devices

                Lists the devices of every backend. Each line starts with the device's TornadoVM id B:D (for
                -Dtornado.device=B:D and -D<graph>.<task>.device=B:D; B numbers the backends in device.order of
                tornado-config/tornado.properties), then its id for --device. No flags.""";
    }

    @Override
    public String summary() {
        return "list the devices of every backend (jvm, opencl:P:D, cuda:N, and TornadoVM's B:D)";
    }

    @Override
    public int run(Flags flags) {
        flags.checkAllRead();
        String defaultId = null;
        String badDefault = null;
        try {
            defaultId = Devices.defaultId();
        } catch (IllegalArgumentException e) {
            badDefault = e.getMessage(); // still list the devices: they are what the user needs to fix it
        }
        DeviceNumbering numbering = Devices.numbering();
        List<Backend> backends = numbering.backends();
        System.out.printf("  %-5s %-14s %s%n", "B:D", "--device", "name, memory, compute units, details");
        for (int b = 0; b < backends.size(); b++) {
            Backend backend = backends.get(b);
            var reason = backend.unavailableReason();
            System.out.println("backend " + b + ": " + backend.name() + reason.map(r -> ": unavailable: " + r).orElse(""));
            if (reason.isPresent()) {
                continue;
            }
            for (DeviceInfo d : backend.devices()) {
                String tornadoId = numbering.tornadoId(d.id()).orElseThrow().toString();
                System.out.printf("  %-5s %s%s%n", tornadoId, d, d.id().equals(defaultId) ? "  (default)" : "");
            }
        }
        if (badDefault != null) {
            System.err.println("lightllm devices: " + badDefault);
            return 2;
        }
        return 0;
    }
}
