#!/usr/bin/python3
"""GENEVE in userspace, for the tests that need it where the kernel has no `geneve` driver.

Two modes, each run inside a network namespace the test made (it talks only to the addresses it
is given: the remote end, the appliances):

tunnel  A point-to-point GENEVE endpoint, the stand-in for
        `ip link add DEV type geneve id VNI remote R`: a TUN device whose packets go to R in
        GENEVE (UDP 6081, optional options), and GENEVE from R (of that VNI) written back to it.

gwlb    An AWS Gateway Load Balancer (docs/deploy-gwlb.md): what the kernel routes into the TUN
        device is wrapped in GENEVE with AWS's three options (class 0x0108: type 1 the endpoint id,
        8 bytes; type 2 the attachment id, 8 bytes; type 3 the flow cookie, 4 bytes) and sent to
        one appliance, chosen by a symmetric hash of the inner 5-tuple (3-tuple for protocols
        without ports) over the healthy appliances, so both directions of a flow reach the same
        one; flows are sticky. Target failover as AWS's target group attribute
        `target_failover.on_unhealthy`: `no_rebalance` (AWS's default) keeps an existing flow on
        its appliance even when it has failed, `rebalance` re-hashes it over the healthy ones once
        the appliance is marked unhealthy. What an appliance sends back must carry the GENEVE
        header and options byte for byte as sent and the same UDP ports (AWS's appliances swap
        the outer addresses and keep the ports, so the outer source port of a returned packet is
        the one GWLB chose); otherwise it is dropped and counted. The inner packet is written back
        to the TUN device. Appliances are health-checked by HTTP GET at an interval (healthy on
        200-399, thresholds as AWS's HealthyThresholdCount / UnhealthyThresholdCount).

Counters and state go to --state FILE as JSON (replaced atomically), so a test can wait for a
condition. Every run is bounded (--max-seconds) and stops on SIGTERM or SIGINT. Python's standard
library only; needs CAP_NET_ADMIN (TUN) and, for gwlb, CAP_NET_RAW (the outer source port).
"""

import argparse
import fcntl
import http.client
import ipaddress
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

GENEVE_PORT = 6081
AWS_CLASS = 0x0108
ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_FLOWS = 4096  # the flow table is bounded: the oldest idle flow goes first
TCP_IDLE = 350.0  # AWS: a TCP flow idle this long is forgotten (GWLB's default idle timeout)
OTHER_IDLE = 120.0  # AWS: non-TCP flows


class Stop:
    """Set by SIGTERM / SIGINT; every loop checks it."""

    def __init__(self):
        self.flag = False
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self._set)

    def _set(self, *_):
        self.flag = True


def die(msg):
    sys.stderr.write("geneve_user.py: " + msg + "\n")
    sys.exit(2)


def private_only(addr, what):
    """Like AWS's target groups (no publicly routable target addresses), and so that a mistyped
    address cannot send test traffic off the machine's namespaces."""
    if not ipaddress.ip_address(addr).is_private:
        die("%s %s: only private addresses (the test's namespaces)" % (what, addr))


def open_tun(name, mtu, address=None):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    cmds = [["ip", "link", "set", name, "mtu", str(mtu)]]
    if address:
        cmds.append(["ip", "addr", "add", address, "dev", name])
    cmds.append(["ip", "link", "set", name, "up"])
    for c in cmds:
        r = subprocess.run(c, capture_output=True, text=True)
        if r.returncode != 0:
            die("`%s` failed: %s" % (" ".join(c), r.stderr.strip()))
    return fd


def parse_option(text):
    """CLASS:TYPE:HEX (e.g. 0x0108:3:0a0b0c0d) -> the option's bytes."""
    try:
        cls, typ, data = text.split(":")
        data = bytes.fromhex(data)
        cls, typ = int(cls, 0), int(typ, 0)
    except ValueError:
        die("--option %s: expected CLASS:TYPE:HEXDATA" % text)
    if len(data) % 4 or len(data) > 124 or not 0 <= cls <= 0xFFFF or not 0 <= typ <= 0xFF:
        die("--option %s: data must be 0..124 bytes, a multiple of 4" % text)
    return struct.pack("!HBB", cls, typ, len(data) // 4) + data


def geneve_header(vni, options, proto):
    if len(options) % 4 or len(options) > 252:
        die("GENEVE options of %d bytes" % len(options))
    return struct.pack("!BBHI", len(options) // 4, 0, proto, vni << 8) + options


def split_geneve(data):
    """(header incl. options, vni, inner) or None when not well-formed GENEVE version 0."""
    if len(data) < 8 or data[0] >> 6 != 0:
        return None
    hlen = 8 + (data[0] & 0x3F) * 4
    if len(data) < hlen:
        return None
    vni = int.from_bytes(data[4:7], "big")
    return data[:hlen], vni, data[hlen:]


def inner_proto(pkt):
    v = pkt[0] >> 4 if pkt else 0
    return ETH_IPV4 if v == 4 else ETH_IPV6 if v == 6 else None


def atomic_write(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# tunnel


def run_tunnel(a, stop):
    options = b"".join(parse_option(o) for o in a.option)
    mtu = a.mtu or 1500 - 20 - 8 - 8 - len(options)
    remote = str(ipaddress.IPv4Address(a.remote))
    private_only(remote, "--remote")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((a.local, a.port))
    sock.setblocking(False)
    tun = open_tun(a.dev, mtu, a.address)
    n = {"encapsulated": 0, "decapsulated": 0, "dropped": 0}
    print("geneve_user.py tunnel: %s vni %d to %s:%d ready" % (a.dev, a.vni, remote, a.port),
          flush=True)
    deadline = time.monotonic() + a.max_seconds
    last_state = 0.0
    while not stop.flag and time.monotonic() < deadline:
        r, _, _ = select.select([tun, sock], [], [], 0.2)
        if tun in r:
            try:
                pkt = os.read(tun, 65535)
            except BlockingIOError:
                pkt = b""
            proto = inner_proto(pkt)
            if proto is not None:
                try:
                    sock.sendto(geneve_header(a.vni, options, proto) + pkt, (remote, a.port))
                    n["encapsulated"] += 1
                except OSError:
                    n["dropped"] += 1
        if sock in r:
            try:
                data, peer = sock.recvfrom(65535)
            except BlockingIOError:
                data, peer = b"", ("", 0)
            g = split_geneve(data)
            if g is None or g[1] != a.vni or peer[0] != remote or inner_proto(g[2]) is None:
                n["dropped"] += 1
            else:
                try:
                    os.write(tun, g[2])
                    n["decapsulated"] += 1
                except OSError:
                    n["dropped"] += 1
        if a.state and time.monotonic() - last_state > 0.2:
            atomic_write(a.state, {"counters": n})
            last_state = time.monotonic()
    if a.state:
        atomic_write(a.state, {"counters": n, "stopped": True})
    os.close(tun)
    return 0


# ---------------------------------------------------------------------------------------------
# gwlb


def flow_of(pkt):
    """The inner packet's flow: (proto, (addr, port), (addr, port)) as sent, or None."""
    v = pkt[0] >> 4 if pkt else 0
    if v == 4 and len(pkt) >= 20:
        ihl = (pkt[0] & 0x0F) * 4
        proto = pkt[9]
        src, dst = pkt[12:16], pkt[16:20]
        frag = struct.unpack("!H", pkt[6:8])[0] & 0x1FFF
        l4 = pkt[ihl:] if frag == 0 else b""
    elif v == 6 and len(pkt) >= 40:
        proto = pkt[6]
        src, dst = pkt[8:24], pkt[24:40]
        l4 = pkt[40:]
    else:
        return None
    sport = dport = 0
    if proto in (6, 17) and len(l4) >= 4:  # 5-tuple; other protocols: 3-tuple (AWS)
        sport, dport = struct.unpack("!HH", l4[:4])
    return proto, (src, sport), (dst, dport)


def symmetric_key(flow):
    proto, a, b = flow
    lo, hi = (a, b) if a <= b else (b, a)
    return bytes([proto]) + lo[0] + struct.pack("!H", lo[1]) + hi[0] + struct.pack("!H", hi[1])


def text_of(flow):
    proto, a, b = flow

    def ep(e):
        return "%s:%d" % (ipaddress.ip_address(e[0]), e[1])

    return {"proto": proto, "src": ep(a), "dst": ep(b)}


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp4(src, dst, sport, dport, payload, ident):
    """An IPv4 + UDP datagram with the given source port (DF set: GWLB does not fragment)."""
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    c = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, ident & 0xFFFF, 0x4000, 64, 17, 0, src,
                     dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + udp


class Appliance:
    def __init__(self, text):
        try:
            addr, port = text.rsplit(":", 1)
            self.address = str(ipaddress.IPv4Address(addr))
            self.health_port = int(port)
        except ValueError:
            die("--appliance %s: expected IPv4:HEALTH_PORT" % text)
        private_only(self.address, "--appliance")
        self.healthy = False  # AWS: `initial` until HealthyThresholdCount checks passed
        self.ok_run = 0
        self.fail_run = 0
        self.checks = 0
        self.last_status = None
        self.sent = 0
        self.returned = 0

    def state(self):
        return {"address": self.address, "health_port": self.health_port,
                "healthy": self.healthy, "checks": self.checks, "last_status": self.last_status,
                "sent": self.sent, "returned": self.returned}


def health_loop(appliances, a, stop, lock):
    """HTTP GET / to every appliance every --health-interval seconds."""
    while not stop.flag:
        for ap in appliances:
            status = None
            try:
                c = http.client.HTTPConnection(ap.address, ap.health_port,
                                               timeout=a.health_timeout)
                c.request("GET", a.health_path, headers={"User-Agent": "ELB-HealthChecker/2.0"})
                status = c.getresponse().status
                c.close()
            except (OSError, http.client.HTTPException):
                status = None
            good = status is not None and 200 <= status <= 399
            with lock:
                ap.checks += 1
                ap.last_status = status
                ap.ok_run = ap.ok_run + 1 if good else 0
                ap.fail_run = 0 if good else ap.fail_run + 1
                if not ap.healthy and ap.ok_run >= a.healthy_threshold:
                    ap.healthy = True
                elif ap.healthy and ap.fail_run >= a.unhealthy_threshold:
                    ap.healthy = False
        end = time.monotonic() + a.health_interval
        while not stop.flag and time.monotonic() < end:
            time.sleep(0.05)


def choose(key, appliances):
    """Rendezvous hash of the flow's symmetric key over the healthy appliances (all of them
    when none is healthy, as AWS then picks any target): removing one moves only its flows."""
    pool = [i for i, ap in enumerate(appliances) if ap.healthy] or list(range(len(appliances)))
    return max(pool, key=lambda i: (zlib.crc32(key + appliances[i].address.encode()), i))


def run_gwlb(a, stop):
    appliances = [Appliance(t) for t in a.appliance]
    if not appliances:
        die("gwlb needs at least one --appliance")
    local = ipaddress.IPv4Address(a.local).packed
    endpoint_id = bytes.fromhex(a.endpoint_id)
    attachment_id = bytes.fromhex(a.attachment_id)
    if len(endpoint_id) != 8 or len(attachment_id) != 8:
        die("--endpoint-id and --attachment-id are 8 bytes (16 hex digits)")
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rx.bind((a.local, GENEVE_PORT))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    tun = open_tun(a.dev, a.mtu)
    lock = threading.Lock()
    checker = threading.Thread(target=health_loop, args=(appliances, a, stop, lock), daemon=True)
    checker.start()

    flows = {}  # symmetric key -> flow entry
    n = {"tun_in": 0, "encapsulated": 0, "returned": 0, "tun_out": 0, "bad_options": 0,
         "bad_port": 0, "bad_source": 0, "not_geneve": 0, "unknown_flow": 0, "not_ip": 0,
         "send_errors": 0, "rehashed": 0, "flows_expired": 0}
    rng = random.Random(a.seed)
    ident = 0

    def write_state(final=False):
        with lock:
            aps = [ap.state() for ap in appliances]
        fl = []
        for f in flows.values():
            e = text_of(f["flow"])
            e.update({"appliance": f["appliance"], "cookie": "%08x" % f["cookie"],
                      "sent": f["sent"], "returned": f["returned"], "rehashed": f["rehashed"],
                      "sports": sorted({port for (_, port) in f["headers"]})})
            fl.append(e)
        atomic_write(a.state, {"failover": a.failover, "appliances": aps, "flows": fl,
                               "counters": n, "stopped": final})

    def expire(now):
        for k in [k for k, f in flows.items()
                  if now - f["last"] > (TCP_IDLE if f["flow"][0] == 6 else OTHER_IDLE)]:
            del flows[k]
            n["flows_expired"] += 1
        if len(flows) >= MAX_FLOWS:
            del flows[min(flows, key=lambda k: flows[k]["last"])]
            n["flows_expired"] += 1

    print("geneve_user.py gwlb: %s to %s (%s) ready" %
          (a.dev, ", ".join(ap.address for ap in appliances), a.failover), flush=True)
    deadline = time.monotonic() + a.max_seconds
    last_state = 0.0
    while not stop.flag and time.monotonic() < deadline:
        r, _, _ = select.select([tun, rx], [], [], 0.1)
        now = time.monotonic()
        if tun in r:
            try:
                pkt = os.read(tun, 65535)
            except BlockingIOError:
                pkt = b""
            n["tun_in"] += 1
            flow = flow_of(pkt)
            if flow is None:
                n["not_ip"] += 1
            else:
                key = symmetric_key(flow)
                f = flows.get(key)
                with lock:
                    if f is None:
                        expire(now)
                        f = {"flow": flow, "appliance": choose(key, appliances),
                             "cookie": rng.getrandbits(32), "sent": 0, "returned": 0,
                             "rehashed": 0, "headers": {}}
                        flows[key] = f
                    elif (a.failover == "rebalance" and not appliances[f["appliance"]].healthy
                          and any(ap.healthy for ap in appliances)):
                        f["appliance"] = choose(key, appliances)
                        f["rehashed"] += 1
                        n["rehashed"] += 1
                f["last"] = now
                ap = appliances[f["appliance"]]
                # The outer source port: GWLB's choice, here a hash of the inner flow as sent
                # (so the two directions of a flow may differ: the appliance must not care).
                sport = 1024 + zlib.crc32(repr(flow).encode()) % 64000
                options = (struct.pack("!HBB", AWS_CLASS, 1, 2) + endpoint_id +
                           struct.pack("!HBB", AWS_CLASS, 2, 2) + attachment_id +
                           struct.pack("!HBBI", AWS_CLASS, 3, 1, f["cookie"]))
                header = geneve_header(0, options, inner_proto(pkt))
                f["headers"][(ap.address, sport)] = header
                ident += 1
                try:
                    tx.sendto(udp4(local, ipaddress.IPv4Address(ap.address).packed, sport,
                                   GENEVE_PORT, header + pkt, ident), (ap.address, 0))
                    n["encapsulated"] += 1
                    f["sent"] += 1
                    ap.sent += 1
                except OSError:
                    n["send_errors"] += 1
        if rx in r:
            try:
                data, (peer, peer_port) = rx.recvfrom(65535)
            except BlockingIOError:
                data, peer, peer_port = b"", "", 0
            g = split_geneve(data)
            flow = flow_of(g[2]) if g else None
            f = flows.get(symmetric_key(flow)) if flow else None
            ap = next((x for x in appliances if x.address == peer), None)
            if ap is None:
                n["bad_source"] += 1
            elif g is None or flow is None:
                n["not_geneve"] += 1
            elif f is None:
                n["unknown_flow"] += 1
            elif (peer, peer_port) not in f["headers"]:
                n["bad_port"] += 1  # the appliance changed the UDP source port
            elif f["headers"][(peer, peer_port)] != g[0]:
                n["bad_options"] += 1  # header or options not returned byte for byte
            else:
                try:
                    os.write(tun, g[2])
                    n["returned"] += 1
                    n["tun_out"] += 1
                    f["returned"] += 1
                    ap.returned += 1
                except OSError:
                    n["send_errors"] += 1
        if a.state and now - last_state > 0.1:
            write_state()
            last_state = now
    stop.flag = True
    checker.join(timeout=5)
    if a.state:
        write_state(final=True)
    os.close(tun)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("tunnel", help="point-to-point GENEVE endpoint on a TUN device")
    t.add_argument("--dev", required=True)
    t.add_argument("--local", required=True, help="underlay address to bind")
    t.add_argument("--remote", required=True, help="the other end's underlay address")
    t.add_argument("--vni", type=int, required=True)
    t.add_argument("--address", help="overlay address for the device (CIDR)")
    t.add_argument("--port", type=int, default=GENEVE_PORT)
    t.add_argument("--option", action="append", default=[], help="CLASS:TYPE:HEXDATA, repeatable")
    t.add_argument("--mtu", type=int, default=0)
    t.add_argument("--state", help="write counters as JSON to FILE")
    t.add_argument("--max-seconds", type=float, default=600)
    g = sub.add_parser("gwlb", help="Gateway Load Balancer emulation on a TUN device")
    g.add_argument("--dev", required=True)
    g.add_argument("--local", required=True, help="the load balancer's address toward appliances")
    g.add_argument("--appliance", action="append", default=[], help="IPv4:HEALTH_PORT, repeatable")
    g.add_argument("--failover", choices=["no_rebalance", "rebalance"], default="no_rebalance",
                   help="target_failover.on_unhealthy (AWS's default: no_rebalance)")
    g.add_argument("--health-interval", type=float, default=1.0)
    g.add_argument("--health-timeout", type=float, default=1.0)
    g.add_argument("--health-path", default="/")
    g.add_argument("--healthy-threshold", type=int, default=2)
    g.add_argument("--unhealthy-threshold", type=int, default=2)
    g.add_argument("--endpoint-id", default="0a1b2c3d4e5f6071")
    g.add_argument("--attachment-id", default="1122334455667788")
    g.add_argument("--mtu", type=int, default=8500)
    g.add_argument("--seed", type=int, default=1, help="flow cookies")
    g.add_argument("--state", required=True, help="counters, appliances and flows as JSON")
    g.add_argument("--max-seconds", type=float, default=600)
    a = p.parse_args()
    stop = Stop()
    return run_tunnel(a, stop) if a.mode == "tunnel" else run_gwlb(a, stop)


if __name__ == "__main__":
    sys.exit(main())
