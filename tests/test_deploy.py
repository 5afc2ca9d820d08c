"""The deployment files under deploy/ agree with the real program.

Every `redaction-proxy` invocation (Kubernetes args, compose command, Dockerfile ENTRYPOINT/CMD) uses
flags the real parser has, under the right subcommand, with values `serve` accepts; every
REDACTION_PROXY_* variable exists; probes hit the admin port; the sidecar's backend is loopback-only and
unexposed; shutdown timing lets in-flight requests drain; the example settings and the policies
ConfigMaps are the ones `redaction-proxy check` accepts. No docker or cluster is needed.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.cli import build_parser, main
from proxy.config import SERVE_OPTIONS, RunConfig, build_config

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
COMPOSE = DEPLOY / "compose.yaml"
PROGRAM = "redaction-proxy"
ENV_VARS = {option.env for option in SERVE_OPTIONS}
REGENERATE = "sh deploy/kubernetes/update-policies.sh"


# ---------------------------------------------------------------------------------------------- loading

def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_files() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def objects(path: Path, kind: str) -> list[dict[str, Any]]:
    return [d for d in load_all(path) if isinstance(d, dict) and d.get("kind") == kind]


def only(path: Path, kind: str) -> dict[str, Any]:
    found = objects(path, kind)
    assert len(found) == 1, f"{path.name}: expected one {kind}, found {len(found)}"
    return found[0]


def compose_services() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(COMPOSE.read_text())
    services: dict[str, dict[str, Any]] = doc["services"]
    return services


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        word, _, rest = text.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in dockerfile():
        if instruction[0] == "FROM":
            result.append([])
        assert result, "Dockerfile instruction before the first FROM"
        result[-1].append(instruction)
    return result


def exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


def one(instructions: list[tuple[str, str]], word: str) -> str:
    found = [rest for w, rest in instructions if w == word]
    assert found, f"Dockerfile runtime stage has no {word}"
    return found[-1]  # the last one is the one in effect


# --------------------------------------------------------------------------------------- invocations

@dataclass
class Invocation:
    where: str
    argv: list[str]                      # after the program name: subcommand, then flags
    env: dict[str, str]
    container: dict[str, Any] = field(default_factory=dict)   # Kubernetes container or compose service
    pod: dict[str, Any] = field(default_factory=dict)
    path: Path = DEPLOY

    @property
    def command(self) -> str:
        return self.argv[0] if self.argv else ""


def is_proxy_image(image: str) -> bool:
    return image.rsplit("/", 1)[-1].split(":")[0].split("@")[0] == PROGRAM


def k8s_invocations() -> list[Invocation]:
    found = []
    for path in k8s_files():
        for deployment in objects(path, "Deployment"):
            pod = deployment["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                command = container.get("command")
                args = [str(a) for a in container.get("args", [])]
                if command and Path(command[0]).name == PROGRAM:
                    argv = [str(c) for c in command[1:]] + args
                elif is_proxy_image(container.get("image", "")) and not command:
                    argv = args  # the image's ENTRYPOINT is redaction-proxy
                else:
                    continue
                env = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
                where = f"{path.name}:{deployment['metadata']['name']}/{container['name']}"
                found.append(Invocation(where, argv, env, container, pod, path))
    return found


def built_from_our_dockerfile(service: dict[str, Any]) -> bool:
    build = service.get("build")
    if isinstance(build, dict):
        target = (COMPOSE.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve()
        return bool(target == DOCKERFILE.resolve())
    return is_proxy_image(service.get("image", ""))


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env if "=" in item)
    return {k: str(v) for k, v in env.items() if v is not None}


def compose_invocations() -> list[Invocation]:
    found = []
    for name, service in compose_services().items():
        entrypoint = service.get("entrypoint")
        command = service.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        if isinstance(entrypoint, str):
            entrypoint = shlex.split(entrypoint)
        if entrypoint:
            if Path(entrypoint[0]).name != PROGRAM:
                continue
            argv = entrypoint[1:] + (command or [])
        elif built_from_our_dockerfile(service):
            argv = command if command is not None else exec_form(one(stages()[-1], "CMD"))
        else:
            continue
        found.append(Invocation(f"compose.yaml:{name}", [str(a) for a in argv], compose_env(service),
                                service, {}, COMPOSE))
    return found


def dockerfile_invocation() -> Invocation:
    runtime = stages()[-1]
    assert exec_form(one(runtime, "ENTRYPOINT")) == [PROGRAM]
    return Invocation("Dockerfile:CMD", exec_form(one(runtime, "CMD")), {}, {}, {}, DOCKERFILE)


def all_invocations() -> list[Invocation]:
    return k8s_invocations() + compose_invocations() + [dockerfile_invocation()]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    # argparse has no public accessor for the subparsers it holds
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    choices: dict[str, argparse.ArgumentParser] = actions[0].choices
    return choices


def flag_value(argv: list[str], flag: str) -> str | None:
    for i, token in enumerate(argv):
        if token == flag and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
    return None


# Placeholders only where a file leaves the required settings to the runtime (the Dockerfile's CMD).
RUNTIME_SUPPLIED = {"REDACTION_PROXY_UPSTREAM": "http://backend:3000",
                    "REDACTION_PROXY_SETTINGS": "/etc/redaction-proxy/settings.yaml"}


def serve_config(inv: Invocation) -> RunConfig:
    assert inv.command == "serve", inv.where
    env = dict(RUNTIME_SUPPLIED, **inv.env) if inv.path == DOCKERFILE else inv.env
    return build_config(build_parser().parse_args(inv.argv), environ=env)


def serve_invocations() -> list[Invocation]:
    return [inv for inv in all_invocations() if inv.command == "serve"]


def k8s_serve() -> list[Invocation]:
    return [inv for inv in k8s_invocations() if inv.command == "serve"]


def compose_serve() -> list[Invocation]:
    return [inv for inv in compose_invocations() if inv.command == "serve"]


def ids(invocations: list[Invocation]) -> list[str]:
    return [inv.where for inv in invocations]


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, by name or number, as the container's port number."""
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise AssertionError(f"container {container['name']} has no port named {port!r}")


def prestop_sleep(container: dict[str, Any]) -> float:
    pre = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre:
        return float(pre["sleep"]["seconds"])
    command = pre.get("exec", {}).get("command", [])
    if command and Path(command[0]).name == "sleep":
        return float(command[1])
    return 0.0


def seconds(duration: str | int) -> float:
    """A compose duration ("35s", "1m30s", 40) in seconds."""
    if isinstance(duration, int):
        return float(duration)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?", duration)
    assert parts and duration, f"cannot read duration {duration!r}"
    h, m, s, ms = (int(x or 0) for x in parts.groups())
    return h * 3600 + m * 60 + s + ms / 1000


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# ------------------------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert load_all(path), f"{path} holds no YAML documents"


def test_expected_files_exist() -> None:
    for path in (DOCKERFILE, DOCKERIGNORE, COMPOSE, K8S / "sidecar.yaml", K8S / "gateway.yaml"):
        assert path.is_file(), path


def test_invocations_found_everywhere() -> None:
    found = {inv.path for inv in all_invocations()}
    assert found >= {DOCKERFILE, COMPOSE, *k8s_files()}
    assert {inv.command for inv in compose_invocations()} == {"serve", "demo-backend"}


# ------------------------------------------------------------------------------------ flags and env

@pytest.mark.parametrize("inv", all_invocations(), ids=ids(all_invocations()))
def test_flags_exist_under_their_subcommand(inv: Invocation) -> None:
    choices = subcommands()
    assert inv.command in choices, f"{inv.where}: {inv.command!r} is not a subcommand of {sorted(choices)}"
    known = choices[inv.command]._option_string_actions
    for token in inv.argv[1:]:
        if token.startswith("-"):
            flag = token.split("=", 1)[0]
            assert flag in known, f"{inv.where}: `{inv.command}` has no flag {flag}"
    try:
        build_parser().parse_args(inv.argv)
    except SystemExit as exc:  # argparse reports to stderr and exits 2
        pytest.fail(f"{inv.where}: argv {inv.argv} does not parse (exit {exc.code})")


@pytest.mark.parametrize("inv", serve_invocations(), ids=ids(serve_invocations()))
def test_serve_settings_are_accepted(inv: Invocation) -> None:
    config = serve_config(inv)  # raises ConfigValueError listing every problem
    assert config.listen[0] == "0.0.0.0", f"{inv.where}: in a container, bind proxied traffic to 0.0.0.0"
    assert config.admin_listen[0] == "0.0.0.0", f"{inv.where}: in a container, bind the admin port to 0.0.0.0"


def test_every_environment_variable_is_real() -> None:
    names: set[tuple[str, str]] = set()
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        for name in re.findall(r"REDACTION_PROXY_[A-Za-z0-9_]*", path.read_text()):
            names.add((str(path.relative_to(REPO)), name))
    for inv in all_invocations():
        names.update((inv.where, n) for n in inv.env if n.upper().startswith("REDACTION_PROXY"))
    unknown = sorted((where, n) for where, n in names if n not in ENV_VARS)
    assert not unknown, f"not environment variables of serve: {unknown}; real ones: {sorted(ENV_VARS)}"
    assert names, "expected some REDACTION_PROXY_* variables (compose's dry-run service at least)"


# --------------------------------------------------------------------------------------- kubernetes

@pytest.mark.parametrize("inv", k8s_serve(), ids=ids(k8s_serve()))
def test_probes_hit_the_admin_port(inv: Invocation) -> None:
    config = serve_config(inv)
    c = inv.container
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet")
        assert get, f"{inv.where}: no httpGet {probe}"
        assert get["path"] == path, f"{inv.where}: {probe} must hit {path}"
        assert container_port(c, get["port"]) == config.admin_listen[1], f"{inv.where}: {probe} not on admin port"
    declared = {int(p["containerPort"]) for p in c.get("ports", [])}
    assert declared == {config.listen[1], config.admin_listen[1]}, f"{inv.where}: ports {declared}"


@pytest.mark.parametrize("inv", k8s_serve(), ids=ids(k8s_serve()))
def test_config_comes_from_read_only_configmaps(inv: Invocation) -> None:
    """--settings and --policies point into whole-ConfigMap mounts defined in the same file."""
    config = serve_config(inv)
    assert config.policies is not None, f"{inv.where}: mount the policies and pass --policies"
    configmaps = {cm["metadata"]["name"]: cm for cm in objects(inv.path, "ConfigMap")}
    volumes = {v["name"]: v for v in inv.pod.get("volumes", [])}
    mounts = {Path(m["mountPath"]): m for m in inv.container.get("volumeMounts", [])}

    def configmap_at(directory: Path) -> dict[str, Any]:
        mount = mounts.get(directory)
        assert mount, f"{inv.where}: nothing mounted at {directory}"
        assert mount.get("readOnly") is True, f"{inv.where}: mount {directory} read-only"
        assert "subPath" not in mount, f"{inv.where}: a subPath mount never sees ConfigMap updates (SIGHUP)"
        name = volumes[mount["name"]].get("configMap", {}).get("name")
        assert name in configmaps, f"{inv.where}: {directory} is not a ConfigMap defined in {inv.path.name}"
        return configmaps[name]

    settings = configmap_at(config.settings.parent)
    assert config.settings.name in settings.get("data", {}), f"{inv.where}: settings key missing"
    policies = configmap_at(config.policies)
    assert any(k.endswith(".yaml") for k in policies.get("data", {})), f"{inv.where}: empty policies"


@pytest.mark.parametrize("inv", k8s_serve(), ids=ids(k8s_serve()))
def test_container_hardening(inv: Invocation) -> None:
    sc = inv.container.get("securityContext", {})
    assert sc.get("runAsNonRoot") is True
    assert sc.get("readOnlyRootFilesystem") is True
    assert sc.get("allowPrivilegeEscalation") is False
    assert "ALL" in sc.get("capabilities", {}).get("drop", [])
    resources = inv.container.get("resources", {})
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{inv.where}: resources.{kind}"


@pytest.mark.parametrize("inv", k8s_serve(), ids=ids(k8s_serve()))
def test_shutdown_grace_fits_termination_grace(inv: Invocation) -> None:
    config = serve_config(inv)
    pre = prestop_sleep(inv.container)
    assert pre > 0, f"{inv.where}: a preStop sleep lets endpoints drain before SIGTERM"
    period = inv.pod["terminationGracePeriodSeconds"]
    assert config.shutdown_grace < period
    assert pre + config.shutdown_grace < period, (
        f"{inv.where}: preStop {pre}s + --shutdown-grace {config.shutdown_grace}s must fit in "
        f"terminationGracePeriodSeconds {period} (it includes the preStop time)")


def sidecar() -> tuple[dict[str, Any], Invocation, list[dict[str, Any]]]:
    path = K8S / "sidecar.yaml"
    deployment = only(path, "Deployment")
    proxies = [inv for inv in k8s_serve() if inv.path == path]
    assert len(proxies) == 1
    others = [c for c in deployment["spec"]["template"]["spec"]["containers"]
              if c["name"] != proxies[0].container["name"]]
    assert len(others) == 1, "the sidecar pod is the backend plus the proxy"
    return deployment, proxies[0], others


def test_sidecar_backend_listens_on_loopback_only() -> None:
    _, proxy, (backend,) = sidecar()
    config = serve_config(proxy)
    assert (config.upstream.host, config.upstream.port) == ("127.0.0.1", 3000)
    assert "ports" not in backend, "the backend declares no container ports: it is not reachable off-pod"
    values = [str(v) for v in backend.get("args", []) + backend.get("command", [])]
    values += [str(e.get("value", "")) for e in backend.get("env", [])]
    assert "127.0.0.1:3000" in values, "the backend must be told to bind 127.0.0.1:3000"
    assert not any("0.0.0.0" in v or v.startswith(":") for v in values), values
    assert "hostNetwork" not in proxy.pod or proxy.pod["hostNetwork"] is False


def test_sidecar_backend_outlives_the_proxy_drain() -> None:
    _, proxy, (backend,) = sidecar()
    config = serve_config(proxy)
    period = proxy.pod["terminationGracePeriodSeconds"]
    backend_pre = prestop_sleep(backend)
    assert backend_pre >= prestop_sleep(proxy.container) + config.shutdown_grace, (
        "the backend gets SIGTERM when its preStop ends; it must still be up while the proxy drains")
    assert backend_pre < period


@pytest.mark.parametrize("path", k8s_files(), ids=lambda p: p.name)
def test_services_expose_only_the_proxy_port(path: Path) -> None:
    services = objects(path, "Service")
    assert services, f"{path.name}: no Service"
    proxies = [inv for inv in k8s_serve() if inv.path == path]
    deployment = only(path, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for service in services:
        assert labels_match(service["spec"]["selector"], pod_labels)
        assert service["spec"].get("sessionAffinity", "None") == "None", "no sticky sessions needed"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for inv in proxies:
                listen = serve_config(inv).listen[1]
                # By name it must be one of the proxy's ports; the backend declares none.
                assert container_port(inv.container, target) == listen, (
                    f"{path.name}: Service port {port} reaches something other than the proxy's {listen}")


def gateway() -> tuple[Path, dict[str, Any], Invocation]:
    path = K8S / "gateway.yaml"
    (inv,) = [inv for inv in k8s_serve() if inv.path == path]
    return path, only(path, "Deployment"), inv


def test_gateway_fronts_the_staging_backend() -> None:
    _, _, inv = gateway()
    assert str(serve_config(inv).upstream) == "http://staging-backend.staging.svc:3000"


def test_hpa_targets_the_gateway_deployment() -> None:
    path, deployment, inv = gateway()
    hpa = only(path, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1", "Deployment", deployment["metadata"]["name"])
    low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    assert 2 <= low <= high
    assert (low, high) == (3, 10)
    if "replicas" in deployment["spec"]:
        assert low <= deployment["spec"]["replicas"] <= high
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert "cpu" in inv.container["resources"]["requests"], "CPU utilization is a share of the request"


def test_pdb_covers_the_gateway_and_allows_a_drain() -> None:
    path, deployment, _ = gateway()
    pdb = only(path, "PodDisruptionBudget")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    low = only(path, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
    if "maxUnavailable" in pdb["spec"]:
        assert 1 <= int(pdb["spec"]["maxUnavailable"]) < low
    else:
        assert 1 <= int(pdb["spec"]["minAvailable"]) < low, "a PDB that allows no eviction blocks node drains"


def test_gateway_assumes_no_single_replica() -> None:
    path, deployment, _ = gateway()
    assert deployment["spec"].get("strategy", {}).get("type", "RollingUpdate") == "RollingUpdate"
    text = path.read_text().lower()
    assert "sticky" in text and "replica" in text, "say why any replica can serve any request"


# ------------------------------------------------------------------------------------------ compose

@pytest.mark.parametrize("inv", compose_serve(), ids=ids(compose_serve()))
def test_compose_proxy_reaches_the_backend_service(inv: Invocation) -> None:
    config = serve_config(inv)
    services = compose_services()
    host, port = config.upstream.host, config.upstream.port
    assert host in services, f"{inv.where}: upstream {host} is not a compose service"
    (backend,) = [b for b in compose_invocations() if b.where == f"compose.yaml:{host}"]
    assert backend.command == "demo-backend"
    assert flag_value(backend.argv, "--listen") == f"0.0.0.0:{port}"
    assert "ports" not in backend.container, "the backend is reached only through the proxy"
    assert host in inv.container.get("depends_on", {})


@pytest.mark.parametrize("inv", compose_serve(), ids=ids(compose_serve()))
def test_compose_proxy_ports_healthcheck_and_settings(inv: Invocation) -> None:
    config = serve_config(inv)
    service = inv.container
    published = {str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])}
    assert published == {str(config.listen[1]), str(config.admin_listen[1])}
    test = " ".join(service["healthcheck"]["test"])
    assert f":{config.admin_listen[1]}/healthz" in test
    assert seconds(service["stop_grace_period"]) > config.shutdown_grace, (
        "compose sends SIGKILL after stop_grace_period: give --shutdown-grace room")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", []) if isinstance(v, str)}
    source = mounts.get(str(config.settings))
    assert source, f"{inv.where}: --settings {config.settings} is not a mounted file"
    assert (COMPOSE.parent / source).resolve() == (DEPLOY / "demo-settings.yaml").resolve()


def test_compose_dry_run_profile_uses_the_environment() -> None:
    services = compose_services()
    dry = [inv for inv in compose_serve() if inv.container.get("profiles")]
    assert len(dry) == 1 and "dry-run" in dry[0].container["profiles"]
    assert dry[0].env.get("REDACTION_PROXY_MODE") == "dry-run"
    assert flag_value(dry[0].argv, "--mode") is None, "a --mode flag would win over the variable"
    assert serve_config(dry[0]).mode.value == "dry-run"
    default = [inv for inv in compose_serve() if not inv.container.get("profiles")]
    assert default and all(serve_config(inv).mode.value == "enforce" for inv in default)
    # Two proxies must not publish the same host port.
    host_ports = [str(p).rsplit(":", 1)[0] for s in services.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports))


# ---------------------------------------------------------------------------------------- Dockerfile

def test_dockerfile_is_multistage_slim_and_copies_only_the_venv() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    for stage in all_stages:
        image = stage[0][1].split()[0]
        assert image == "python:3.11-slim", image
    runtime = all_stages[-1]
    for word, rest in runtime:
        if word in ("COPY", "ADD"):
            assert word == "COPY" and rest.startswith("--from="), f"runtime stage copies from the build only: {rest}"


def test_dockerfile_runs_as_non_root() -> None:
    user = one(stages()[-1], "USER").split(":")[0]
    assert user not in ("root", "0"), user
    assert user.isdigit(), "a numeric USER lets Kubernetes' runAsNonRoot verify it"
    uids = {inv.container.get("securityContext", {}).get("runAsUser") for inv in k8s_serve()}
    assert uids <= {int(user), None}


def test_dockerfile_healthcheck_expose_stopsignal() -> None:
    runtime = stages()[-1]
    config = serve_config(dockerfile_invocation())
    health = one(runtime, "HEALTHCHECK")
    assert not health.upper().startswith("NONE")
    assert f"127.0.0.1:{config.admin_listen[1]}/healthz" in health
    assert "urllib" in health, "the slim image has no curl"
    assert set(one(runtime, "EXPOSE").split()) == {str(config.listen[1]), str(config.admin_listen[1])}
    assert one(runtime, "STOPSIGNAL") == "SIGTERM"


def ignored(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule, simplified: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for negated, pattern in patterns:
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            result = not negated
    return result


def build_output(path: Path) -> bool:
    """What building in the checkout leaves beside the sources (the scanner's C file and module)."""
    return path.name == "_scan.c" or path.suffix == ".so"


def test_build_context_holds_everything_the_wheel_needs() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    setup = ast.parse((REPO / "setup.py").read_text())
    bundle = next(node.value for node in setup.body if isinstance(node, ast.Assign)
                  and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "BUNDLE")
    bundled = set(ast.literal_eval(bundle))  # what setup.py copies into the wheel's proxy/_bundled
    needed = {"pyproject.toml", "setup.py", pyproject["project"]["readme"], *packages, *bundled}
    build = stages()[0]
    copied: set[str] = set()
    for word, rest in build:
        if word == "COPY" and not rest.startswith("--from"):
            copied.update(s.rstrip("/") for s in rest.split()[:-1])
    assert needed <= copied, f"the build stage does not COPY {sorted(needed - copied)}"
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    for source in sorted(copied):
        files = [source] if (REPO / source).is_file() else [
            str(p.relative_to(REPO)) for p in (REPO / source).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not build_output(p)]
        assert files, source
        excluded = [f for f in files if ignored(f, patterns)]
        assert not excluded, f"Dockerfile.dockerignore leaves out files the build copies: {excluded[:5]}"
    assert ignored(".venv/bin/python", patterns) and ignored(".git/HEAD", patterns)


# ------------------------------------------------------------------- settings and policies validate

def settings_configmaps() -> list[tuple[str, str]]:
    found = []
    for path in k8s_files():
        for cm in objects(path, "ConfigMap"):
            if "settings.yaml" in cm.get("data", {}):
                found.append((f"{path.name}:{cm['metadata']['name']}", cm["data"]["settings.yaml"]))
    return found


@pytest.mark.parametrize("where,text", settings_configmaps(), ids=[w for w, _ in settings_configmaps()])
def test_example_settings_pass_check(where: str, text: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(text)
    code = main(["check", "--policies", str(REPO / "policies"), "--settings", str(settings)])
    out, err = capsys.readouterr()
    assert code == 0, f"{where}: redaction-proxy check failed:\n{err}"
    assert out.startswith("ok:")
    assert yaml.safe_load(text).get("users"), f"{where}: show a per-user override in the example"


def test_compose_settings_pass_check(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--policies", str(REPO / "policies"), "--settings", str(DEPLOY / "demo-settings.yaml")])
    assert code == 0, capsys.readouterr().err


def test_settings_check_really_rejects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The check above would catch a wrong key: a settings file with one exits 2."""
    bad = tmp_path / "settings.yaml"
    bad.write_text(settings_configmaps()[0][1].replace("billing_rate_visibility: own", "billing_rate_visiblity: own"))
    assert main(["check", "--policies", str(REPO / "policies"), "--settings", str(bad)]) == 2
    assert "billing_rate_visiblity" in capsys.readouterr().err


def policies_configmaps() -> list[tuple[str, dict[str, str]]]:
    found = []
    for inv in k8s_serve():
        name = next(
            v["configMap"]["name"] for v in inv.pod["volumes"]
            for m in inv.container["volumeMounts"]
            if m["name"] == v["name"] and Path(m["mountPath"]) == serve_config(inv).policies)
        (cm,) = [c for c in objects(inv.path, "ConfigMap") if c["metadata"]["name"] == name]
        found.append((f"{inv.path.name}:{name}", cm["data"]))
    return found


@pytest.mark.parametrize("where,data", policies_configmaps(), ids=[w for w, _ in policies_configmaps()])
def test_policies_configmap_is_current(where: str, data: dict[str, str], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    repo = {p.name: p.read_text() for p in sorted((REPO / "policies").glob("*.yaml"))}
    shipped = {k: v for k, v in data.items() if k.endswith(".yaml")}
    stale = sorted(set(repo) ^ set(shipped) | {k for k in repo.keys() & shipped.keys() if repo[k] != shipped[k]})
    assert not stale, f"{where} differs from policies/ in {stale}: regenerate with `{REGENERATE}`"
    policies = tmp_path / "policies"
    policies.mkdir()
    for name, text in shipped.items():
        (policies / name).write_text(text)
    settings = tmp_path / "settings.yaml"
    settings.write_text(settings_configmaps()[0][1])
    assert main(["check", "--policies", str(policies), "--settings", str(settings)]) == 0, capsys.readouterr().err


# ------------------------------------------------------------------------- gateway conventions (issue 12)

def test_readiness_follows_the_backend_in_the_sidecar_only() -> None:
    _, proxy, _ = sidecar()
    assert serve_config(proxy).ready_requires_upstream is True, "a sidecar whose backend is down cannot serve"
    _, _, inv = gateway()
    assert serve_config(inv).ready_requires_upstream is False, (
        "in a gateway a backend outage must not empty the Service (clients get JSON 502/503, not resets)")


@pytest.mark.parametrize("inv", k8s_serve(), ids=ids(k8s_serve()))
def test_prometheus_scrapes_the_admin_port(inv: Invocation) -> None:
    deployment = only(inv.path, "Deployment")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true"
    assert int(annotations["prometheus.io/port"]) == serve_config(inv).admin_listen[1]
    assert annotations.get("prometheus.io/path") == "/metrics"


def config_checksum(path: Path) -> str:
    """What update-policies.sh writes: sha256 of [[name, data], ...] over the file's ConfigMaps."""
    maps = sorted([cm["metadata"]["name"], cm.get("data", {})] for cm in objects(path, "ConfigMap"))
    return hashlib.sha256(json.dumps(maps, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@pytest.mark.parametrize("path", k8s_files(), ids=lambda p: p.name)
def test_config_checksum_rolls_pods_on_configmap_change(path: Path) -> None:
    annotations = only(path, "Deployment")["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("checksum/config") == config_checksum(path), (
        f"{path.name}: checksum/config is stale: run `{REGENERATE}`")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="update-policies.sh renders the ConfigMap with kubectl")
def test_the_policies_configmaps_are_what_update_policies_writes(tmp_path: Path) -> None:
    """The copies are generated, not hand-kept: the script, run on a copy of the checkout, writes the
    committed manifests byte for byte (the tests above refuse a stale copy even without kubectl)."""
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    ran = subprocess.run(["sh", "deploy/kubernetes/update-policies.sh"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHON": sys.executable}, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    for path in k8s_files():
        assert (tmp_path / path.relative_to(REPO)).read_text() == path.read_text(), (
            f"{path.name} is not what `{REGENERATE}` writes: run it")


def test_config_checksum_moves_with_the_settings(tmp_path: Path) -> None:
    """The check above can fail: one changed settings value changes the checksum."""
    path = K8S / "sidecar.yaml"
    edited = tmp_path / path.name
    edited.write_text(path.read_text().replace("billing_rate_visibility: own", "billing_rate_visibility: none", 1))
    assert config_checksum(edited) != config_checksum(path)


@pytest.mark.parametrize("inv", k8s_serve(), ids=ids(k8s_serve()))
def test_network_policy_keeps_the_admin_port_private(inv: Invocation) -> None:
    config = serve_config(inv)
    pod_labels = only(inv.path, "Deployment")["spec"]["template"]["metadata"]["labels"]
    policies = [p for p in objects(inv.path, "NetworkPolicy")
                if labels_match(p["spec"]["podSelector"].get("matchLabels", {}), pod_labels)]
    assert len(policies) == 1, f"{inv.where}: one NetworkPolicy must select the proxy's pods"
    spec = policies[0]["spec"]
    assert "Ingress" in spec["policyTypes"]
    open_ports: set[int] = set()
    admin_peers: list[dict[str, Any]] = []
    for rule in spec.get("ingress", []):
        ports = {container_port(inv.container, p["port"]) for p in rule.get("ports", [])}
        assert ports, f"{inv.where}: an ingress rule without ports opens every port"
        if not rule.get("from"):
            open_ports |= ports
        elif config.admin_listen[1] in ports:
            admin_peers.extend(rule["from"])
    assert open_ports == {config.listen[1]}, f"{inv.where}: only the proxy port is open to all, not {open_ports}"
    assert admin_peers, f"{inv.where}: the admin port must be reachable by monitoring"
    for peer in admin_peers:
        assert "ipBlock" not in peer or peer["ipBlock"]["cidr"] not in ("0.0.0.0/0", "::/0")
        assert peer.get("namespaceSelector", {}).get("matchLabels") or peer.get("podSelector", {}).get("matchLabels"), (
            f"{inv.where}: an empty selector would open the admin port to every pod")
