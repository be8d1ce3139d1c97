"""Run the fake cluster by hand: ``cd tests/kubernetes && python -m fake_cluster``, then point
kubectl at the kubeconfig it prints. Ctrl-C stops it and removes every container it started."""

from __future__ import annotations

import argparse
import signal
import threading

from .cluster import FakeCluster


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m fake_cluster", description=__doc__)
    parser.add_argument("--namespace", default="rtbuild-test")
    parser.add_argument("--extra-arch", action="append", default=[], help="add a node for this architecture")
    parser.add_argument("--no-tls", action="store_true", help="serve plain http")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeCluster(namespace=args.namespace, tls=not args.no_tls, extra_archs=tuple(args.extra_arch)) as cluster:
        print(f"rtbuild fake cluster at {cluster.url} (namespace {cluster.namespace})")
        print(f"export KUBECONFIG={cluster.kubeconfig_path}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
