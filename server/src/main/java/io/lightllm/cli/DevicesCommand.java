package io.lightllm.cli;

import io.lightllm.tornado.runtime.Backend;
import io.lightllm.tornado.runtime.DeviceInfo;
import io.lightllm.tornado.runtime.Devices;

/** {@code lightllm devices}: every device of every backend, and why a backend is unavailable. */
final class DevicesCommand implements Main.Command {
    @Override
    public String help(String subcommand) {
        return "usage: lightllm devices\n\nLists the devices of every backend, with their ids for --device. No flags.";
    }

    @Override
    public String summary() {
        return "list the devices of every backend (jvm, opencl:P:D, cuda:N)";
    }

    @Override
    public int run(Flags flags) {
        flags.checkAllRead();
        for (Backend b : Devices.backends()) {
            var reason = b.unavailableReason();
            if (reason.isPresent()) {
                System.out.println(b.name() + ": unavailable: " + reason.get());
                continue;
            }
            for (DeviceInfo d : b.devices()) {
                System.out.println(d);
            }
        }
        return 0;
    }
}
