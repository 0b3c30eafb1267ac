"""docker-compose.yml, the Dockerfile and deploy/nginx.conf, checked without Docker.

Every publisher service's command must be a real `publisher` command (run with --help through
the entry point, and once as `python -m publisher`);
workers must scale (no container_name, no host ports); nginx must serve /feeds/ from the volume
the web app and the scheduler write feeds into, and proxy the rest: when nginx is installed, the
config is loaded into a real nginx that serves a feed file and proxies to a stand-in app.
"""

from __future__ import annotations

import http.server
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from publisher.cli.main import main
from publisher.delivery.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PUBLISHER = {name: s for name, s in SERVICES.items() if s.get("image") == "publisher:latest"}
NGINX_CONF = (ROOT / "deploy" / "nginx.conf").read_text()


def dockerfile_cmd() -> list[str]:
    match = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile has an exec-form CMD"
    return list(yaml.safe_load(match.group(1)))


def commands() -> dict[str, list[str]]:
    found = {name: list(s["command"]) for name, s in PUBLISHER.items()}
    found["Dockerfile CMD"] = dockerfile_cmd()
    return found


def test_the_topology_has_every_part() -> None:
    assert {"postgres", "mailpit", "migrate", "web", "scheduler", "worker", "nginx"} <= set(
        SERVICES
    )
    assert set(PUBLISHER) == {"migrate", "web", "scheduler", "worker"}
    for name, service in PUBLISHER.items():
        env = service["environment"]
        assert env["PUBLISHER_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert "@postgres:5432/" in env["PUBLISHER_DATABASE_URL"], name
        assert "mailpit:1025" in env["PUBLISHER_SMTP_URL"], name
    assert any("8025" in str(p) for p in SERVICES["mailpit"]["ports"])  # the catcher's web UI


@pytest.mark.parametrize(("name", "command"), sorted(commands().items()))
def test_each_command_is_a_real_publisher_command(
    name: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The command with --help appended parses (every option exists) and exits 0."""
    assert command[0] == "publisher", name
    with pytest.raises(SystemExit) as done:
        main([*command[1:], "--help"])
    assert done.value.code == 0, f"{name}: {shlex.join(command)}\n{capsys.readouterr()}"


def test_the_image_entry_point_runs_as_a_process() -> None:
    worker = commands()["worker"]
    done = subprocess.run(
        [sys.executable, "-m", "publisher", *worker[1:], "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_workers_scale_and_only_one_scheduler_leads() -> None:
    for name in ("worker", "scheduler"):
        service = SERVICES[name]
        assert "container_name" not in service, f"{name} could not be scaled"
        assert "ports" not in service, f"{name} replicas would fight over a host port"
    assert "--no-deliver" in SERVICES["scheduler"]["command"]  # workers do the sending
    assert "--web-only" in SERVICES["web"]["command"]
    assert SERVICES["worker"]["stop_grace_period"]  # time to finish the messages in flight


def _mount(service: dict[str, Any], volume: str) -> str:
    for entry in service.get("volumes", []):
        source, target, *_ = str(entry).split(":")
        if source == volume:
            return target
    raise AssertionError(f"volume {volume!r} is not mounted")


def test_nginx_serves_feeds_from_the_volume_the_app_writes() -> None:
    assert "feeds" in COMPOSE["volumes"]
    served = _mount(SERVICES["nginx"], "feeds")
    for writer in ("web", "scheduler"):
        service = SERVICES[writer]
        assert _mount(service, "feeds") == service["environment"]["PUBLISHER_FEEDS_DIR"]
    location = re.search(r"location /feeds/ \{(.*?)\n    \}", NGINX_CONF, re.S)
    assert location, "nginx.conf has a /feeds/ location"
    root = re.search(r"^\s*root (\S+);", location.group(1), re.M)
    assert root and f"{root.group(1).rstrip('/')}/feeds" == served.rstrip("/")
    conf_mount = _mount(SERVICES["nginx"], "./deploy/nginx.conf")
    assert conf_mount == "/etc/nginx/conf.d/default.conf"


def test_only_nginx_is_believed_about_the_client_address() -> None:
    """nginx sets X-Forwarded-For from the address it sees; the web app trusts nginx alone."""
    assert "$proxy_add_x_forwarded_for" not in NGINX_CONF
    forwarded = NGINX_CONF.count("proxy_set_header X-Forwarded-For $remote_addr;")
    assert forwarded >= 2 and forwarded == NGINX_CONF.count("proxy_set_header Host $host;")
    web = SERVICES["web"]
    assert "*" not in web["command"] and "--forwarded-allow-ips" not in web["command"]
    trusted = web["environment"]["PUBLISHER_FORWARDED_ALLOW_IPS"]
    assert SERVICES["nginx"]["networks"]["default"]["ipv4_address"] == trusted
    subnet = COMPOSE["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(trusted) in ipaddress.ip_network(subnet)


class _App(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        forwarded = self.headers.get("X-Forwarded-For")
        body = (f"forwarded:{forwarded}" if self.path == "/whoami" else f"app:{self.path}").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_config_runs_serving_feeds_and_proxying(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "americas.rss").write_text("<rss/>")
    app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    port = free_port()
    conf = (
        NGINX_CONF.replace("listen 80;", f"listen 127.0.0.1:{port};")
        .replace("root /srv;", f"root {tmp_path};")
        .replace("http://web:8000", f"http://127.0.0.1:{app.server_address[1]}")
    )
    (tmp_path / "site.conf").write_text(conf)
    user = "user root;" if os.geteuid() == 0 else ""  # pytest's tmp dirs are private (0700)
    (tmp_path / "nginx.conf").write_text(
        f"{user} daemon off; pid {tmp_path}/nginx.pid; error_log stderr;\n"
        f"events {{}}\nhttp {{ access_log off; client_body_temp_path {tmp_path}/body;\n"
        f"proxy_temp_path {tmp_path}/proxy; include {tmp_path}/site.conf; }}\n"
    )
    nginx = subprocess.Popen(
        ["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(50):
            try:
                feed = urllib.request.urlopen(f"{base}/feeds/americas.rss", timeout=2)
                break
            except OSError:
                if nginx.poll() is not None:
                    pytest.fail(f"nginx did not start: {nginx.communicate()[1]}")
                time.sleep(0.1)
        assert feed.read() == b"<rss/>"
        assert feed.headers["Content-Type"] == "application/rss+xml"
        assert feed.headers["ETag"] and feed.headers["Last-Modified"]
        assert urllib.request.urlopen(f"{base}/regions/gt").read() == b"app:/regions/gt"
        forged = urllib.request.Request(f"{base}/whoami", headers={"X-Forwarded-For": "6.6.6.6"})
        assert urllib.request.urlopen(forged).read() == b"forwarded:127.0.0.1"
        missing = urllib.request.urlopen(f"{base}/feeds/caribbean.atom").read()
        assert missing == b"app:/feeds/caribbean.atom"  # not built yet: the app answers
    finally:
        nginx.terminate()
        nginx.wait(10)
        app.shutdown()
