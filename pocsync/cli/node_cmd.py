"""``pocsync init|node-info|run|recover``: create a node, describe it, run its daemon, rebuild its store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pocsync.cli.common import console, data_option, err_console, print_json
from pocsync.errors import PocsyncError
from pocsync.folder.nodedir import NodeDir


@click.command("init")
@click.option("--node", "node_id", required=True, help="Node id, e.g. eu, osce, un.")
@data_option
@click.option("--organisation", default="", help="Organisation running the node.")
@click.option(
    "--listen",
    default="127.0.0.1:8700",
    show_default=True,
    metavar="HOST:PORT",
    help="Where the node's HTTP API listens (peer sync, directory, health); 0.0.0.0:PORT for every "
    "interface (then --public-url is required).",
)
@click.option(
    "--public-url",
    default="",
    metavar="URL",
    help="The URL other nodes and PoCs reach this node at, e.g. https://eu.example.org:8443 "
    "(default: built from --listen; required when --listen is a wildcard address).",
)
@click.option("--tls-cert", default="", metavar="FILE", help="TLS certificate chain (PEM) the API serves.")
@click.option("--tls-key", default="", metavar="FILE", help="Private key (PEM) of --tls-cert.")
@click.option(
    "--behind-tls-proxy",
    is_flag=True,
    help="A TLS-terminating proxy sits in front: serve plain HTTP off loopback anyway.",
)
@click.option(
    "--peer-ca",
    "peer_ca",
    default="",
    metavar="FILE",
    help="CA certificate(s) that peers' HTTPS certificates chain to (default: the system's trust store).",
)
@click.option(
    "--mqtt",
    "mqtt_url",
    default="",
    metavar="URL",
    help="Broker, mqtt://[user@]host:port or mqtts://…; none: sync over HTTP pull alone.",
)
@click.option("--mqtt-password-file", default="", metavar="FILE", help="File holding the broker password.")
@click.option(
    "--peer",
    "peers",
    multiple=True,
    metavar="URL",
    help="A peer node's URL to pull from (repeatable); the manifest's endpoints are pulled from too.",
)
def init(
    node_id: str,
    data: Path,
    organisation: str,
    listen: str,
    public_url: str,
    tls_cert: str,
    tls_key: str,
    behind_tls_proxy: bool,
    peer_ca: str,
    mqtt_url: str,
    mqtt_password_file: str,
    peers: tuple[str, ...],
) -> None:
    """Create a node: its keys (mode 0600), its store and DATA/sync.toml."""
    if mqtt_url and not mqtt_url.startswith(("mqtt://", "mqtts://")):
        raise click.BadParameter("must start with mqtt:// or mqtts://", param_hint="'--mqtt'")
    if mqtt_password_file and not Path(mqtt_password_file).is_file():
        raise click.BadParameter(f"{mqtt_password_file}: no such file", param_hint="'--mqtt-password-file'")
    nd = NodeDir.init(
        data,
        node_id=node_id,
        organisation=organisation,
        listen=listen,
        mqtt_url=mqtt_url,
        mqtt_password_file=mqtt_password_file,
        peers=peers,
        public_url=public_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
        behind_tls_proxy=behind_tls_proxy,
        peer_ca_file=peer_ca,
    )
    console.print(
        f"node {node_id} created in {data}, reachable at {nd.config.api.public_url}. "
        f"Next: `pocsync node-info --data {data}` for the manifest."
    )


@click.command("node-info")
@data_option
@click.option("--key", "key_name", default=None, help="Signing key name to describe (default: the newest).")
def node_info(data: Path, key_name: str | None) -> None:
    """Print the node's public keys and URL as JSON, for `manifest add-node --node-info`.

    Refuses when the node's public URL (sync.toml [api] public_url) is one other nodes cannot use.
    """
    print_json(NodeDir.open(data).node_info(key_name=key_name))


@click.command("run")
@click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The node's data folder (holds sync.toml, store.sqlite and keys/).",
)
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Path of sync.toml, instead of --data.",
)
def run_cmd(data: Path | None, config: Path | None) -> None:
    """Run the node daemon: API server, MQTT push (if configured) and HTTP pull from peers."""
    from pocsync.node import daemon

    daemon.run(NodeDir.open(data, config=config))


@click.command("recover")
@data_option
@click.option("--peer", required=True, metavar="URL", help="A peer node's URL to rebuild this node's log from.")
def recover_cmd(data: Path, peer: str) -> None:
    """Rebuild this node's store from a peer (after a lost or restored store) so it may sign again."""
    import aiohttp

    from pocsync.folder.config import public_url_problem
    from pocsync.node.recover import recover

    problem = public_url_problem(peer)
    if problem:
        raise click.BadParameter(problem, param_hint="'--peer'")
    nd = NodeDir.open(data)
    try:
        res = recover(nd, peer)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise PocsyncError(f"cannot recover from {peer}: {exc or type(exc).__name__}", reason="unreachable") from None
    console.print(
        f"recovered from {res['peer']}: {res['accepted']} change-set(s) accepted; own head seq "
        f"{res['own_head_before']} → {res['own_head_after']}" + (" (new store)" if res["created"] else "")
    )
    if res["signing_blocked"]:
        err_console.print(f"[yellow]still must not sign[/]: {res['signing_blocked']}")
        sys.exit(1)
