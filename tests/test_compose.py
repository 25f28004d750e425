"""docker-compose.yml, docker-compose.minimal.yml, the Dockerfile and config/profiles agree with the code.

No Docker engine runs here: the compose files are parsed (and checked by Debian's `docker-compose
config -q` when it is installed; CI installs it), and every name, port, path and memory limit the
containers rely on is checked against what the package reads and ships.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ratatouille_nb.resources.profiles import PROFILE_DIR, PROFILE_NAMES, load_profile, parse_size_mb
from ratatouille_nb.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FULL = ROOT / "docker-compose.yml"
MINIMAL = ROOT / "docker-compose.minimal.yml"
DOCKERFILE = ROOT / "Dockerfile"

# The environment variables of interfaces.md ("Where things live") plus S3_REGION (settings.py).
SETTINGS_ENV = {
    "RAT_HOME", "RAT_WORKSPACE", "RAT_PROFILE", "RAT_BRANCH", "RAT_CATALOG",
    "NESSIE_URI", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_REGION", "RAT_WAREHOUSE",
}
# What the full stack must set in every Ratatouille container.
FULL_STACK_ENV = SETTINGS_ENV - {"RAT_BRANCH"}
# Read by the container itself (Jupyter, Dagster, the image's entrypoint), not by ratatouille_nb.
CONTAINER_ENV = {"JUPYTER_TOKEN", "DAGSTER_HOME", "RAT_DEMO_ROWS"}
RAT_SERVICES = ("jupyter", "dagster")
# The per-process overhead on top of a profile's max_memory_mb (see docs/full-stack.md).
JUPYTER_HEADROOM_MB = 512
DAGSTER_HEADROOM_MB = 1024

_VAR_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any) -> Any:
    """Compose's `${VAR:-default}` with no variables set (the out-of-the-box values)."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            return m.group(2) or ""

        return _VAR_RE.sub(sub, value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def variables(value: Any) -> set[str]:
    """The `${VAR}` names a compose file interpolates."""
    return {m.group(1) or m.group(3) for m in _VAR_RE.finditer(yaml.safe_dump(value)) if m.group(0) != "$$"}


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return interpolate(load(FULL))


@pytest.fixture(scope="module")
def minimal() -> dict[str, Any]:
    return interpolate(load(MINIMAL))


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> source (a named volume or a ./path)."""
    out = {}
    for item in service.get("volumes") or []:
        source, target = item.split(":")[:2]
        out[target] = source
    return out


def published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port."""
    out = {}
    for item in service.get("ports") or []:
        parts = str(item).split(":")
        out[int(parts[-1].split("/")[0])] = int(parts[-2])
    return out


def memory_mb(service: dict[str, Any]) -> int:
    return parse_size_mb(service["deploy"]["resources"]["limits"]["memory"].replace("M", "MB").replace("G", "GB"))


def settings_for(service: dict[str, Any]) -> Settings:
    env = env_of(service)
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k in SETTINGS_ENV}
    try:
        os.environ.update({k: v for k, v in env.items() if k in SETTINGS_ENV})
        return Settings.from_env()
    finally:
        for k in SETTINGS_ENV:
            os.environ.pop(k, None)
        os.environ.update(saved)


def packaged_profile(name: str) -> dict[str, Any]:
    return yaml.safe_load((PROFILE_DIR / f"{name}.yaml").read_text())


# -- names --------------------------------------------------------------------------------------


def test_every_settings_variable_is_read_by_the_package() -> None:
    source = (ROOT / "ratatouille_nb" / "settings.py").read_text()
    for name in SETTINGS_ENV:
        assert f'"{name}"' in source, f"{name} is not read in ratatouille_nb/settings.py"


@pytest.mark.parametrize("service", RAT_SERVICES)
def test_full_stack_sets_the_settings_the_code_reads(full: dict[str, Any], service: str) -> None:
    env = env_of(full["services"][service])
    unknown = set(env) - SETTINGS_ENV - CONTAINER_ENV
    assert not unknown, f"{service} sets variables nothing reads: {sorted(unknown)}"
    missing = FULL_STACK_ENV - set(env)
    assert not missing, f"{service} does not set {sorted(missing)}"
    assert env["RAT_CATALOG"] == "nessie"
    assert env["RAT_PROFILE"] in PROFILE_NAMES


def test_both_ratatouille_services_share_one_configuration(full: dict[str, Any]) -> None:
    jupyter, dagster = (env_of(full["services"][s]) for s in RAT_SERVICES)
    assert {k: v for k, v in jupyter.items() if k in SETTINGS_ENV} == {k: v for k, v in dagster.items() if k in SETTINGS_ENV}


def test_settings_resolve_to_the_services(full: dict[str, Any]) -> None:
    services = full["services"]
    settings = settings_for(services["jupyter"])
    assert settings.catalog == "nessie"
    # NESSIE_URI: the nessie service, on the port it listens on, API v2
    nessie = urlsplit(settings.nessie_uri or "")
    assert nessie.hostname == "nessie" and nessie.path == "/api/v2"
    assert nessie.port in published(services["nessie"])
    from ratatouille_nb.catalog.nessie_client import normalize_uri

    assert normalize_uri(settings.nessie_uri or "") == "http://nessie:19120/api/v2"
    # S3: the minio service's API port, its root credentials, a bucket `init` creates
    s3 = urlsplit(settings.s3_endpoint or "")
    assert s3.hostname == "minio" and s3.port == 9000
    minio = services["minio"]
    assert 9000 in published(minio)
    assert "--console-address" in minio["command"] and ":9001" in minio["command"]
    assert settings.s3_access_key == env_of(minio)["MINIO_ROOT_USER"]
    assert settings.s3_secret_key == env_of(minio)["MINIO_ROOT_PASSWORD"]
    assert settings.is_s3
    bucket = settings.warehouse_root.removeprefix("s3://").split("/")[0]
    script = "\n".join(services["init"]["command"])
    assert f"mc mb --ignore-existing minio/{bucket}" in script
    # Nessie's own Iceberg REST endpoint serves the same bucket, with the same credentials
    nessie_env = env_of(services["nessie"])
    assert nessie_env["nessie.catalog.warehouses.warehouse.location"].startswith(f"s3://{bucket}")
    assert urlsplit(nessie_env["nessie.catalog.service.s3.default-options.endpoint"]).netloc == s3.netloc
    assert nessie_env["rat.s3.name"] == settings.s3_access_key
    assert nessie_env["nessie.catalog.service.s3.default-options.access-key"].endswith(":rat.s3")


def test_minimal_stack_is_the_embedded_default(minimal: dict[str, Any]) -> None:
    assert set(minimal["services"]) == {"jupyter"}
    service = minimal["services"]["jupyter"]
    env = env_of(service)
    assert not set(env) - SETTINGS_ENV - CONTAINER_ENV
    assert not {"NESSIE_URI", "RAT_WAREHOUSE", "S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY"} & set(env)
    settings = settings_for(service)
    assert settings.catalog == "local" and not settings.is_s3
    assert str(settings.home) == env["RAT_HOME"]
    volume = mounts(service)[env["RAT_HOME"]]
    assert volume in minimal["volumes"]
    # not the full stack's RAT_HOME: that one belongs to Nessie + S3
    assert volume not in (load(FULL).get("volumes") or {})


# -- services, ports, volumes -------------------------------------------------------------------


def test_full_stack_services_ports_and_volumes(full: dict[str, Any]) -> None:
    services = full["services"]
    assert set(services) == {"minio", "init", "nessie", "jupyter", "dagster", "policies", "minio-policies"}
    assert published(services["minio"]) == {9000: 9000, 9001: 9001}
    assert published(services["nessie"]) == {19120: 19120}
    assert published(services["jupyter"]) == {8888: 8889}
    assert published(services["dagster"]) == {3000: 3030}
    for name, service in services.items():
        for item in service.get("ports") or []:
            assert str(item).startswith("127.0.0.1:"), f"{name} publishes {item} beyond localhost by default"
    # Dagster is optional: only with `--profile dagster`
    assert services["dagster"]["profiles"] == ["dagster"]
    assert all("profiles" not in s for n, s in services.items() if n != "dagster")
    assert set(full["volumes"]) == {"minio_data", "nessie_data", "rat_home", "dagster_storage", "policies"}
    for service in services.values():
        for source in mounts(service).values():
            assert source.startswith("./") or source in full["volumes"], f"undeclared volume {source}"
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"bind mount source {source} is not in the repository"
    assert mounts(services["minio"])["/data"] == "minio_data"
    assert mounts(services["nessie"])["/nessie/data"] == "nessie_data"
    assert env_of(services["nessie"])["nessie.version.store.persist.rocks.database-path"].startswith("/nessie/data/")
    # `init` makes Nessie's volume writable before Nessie starts on it
    assert mounts(services["init"])["/nessie/data"] == "nessie_data"
    assert services["nessie"]["depends_on"]["init"]["condition"] == "service_completed_successfully"
    # the access policies: `rat admin policies` on the shared RAT_HOME, then MinIO creates them
    assert services["policies"]["command"] == ["rat", "admin", "policies", "--out", "/policies"]
    assert mounts(services["policies"])["/data/rat"] == "rat_home" and mounts(services["policies"])["/policies"] == "policies"
    assert services["minio-policies"]["depends_on"]["policies"]["condition"] == "service_completed_successfully"
    assert "mc admin policy create minio" in services["minio-policies"]["command"][0]


@pytest.mark.parametrize("service", RAT_SERVICES)
def test_ratatouille_paths_are_mounted(full: dict[str, Any], service: str) -> None:
    spec = full["services"][service]
    env, mounted = env_of(spec), mounts(spec)
    # RAT_HOME (run history, registries, spill) is one named volume shared by jupyter and dagster
    assert mounted[env["RAT_HOME"]] == "rat_home"
    # the workspace lives in the host's ./workspaces (editable from the host), under the image's /app
    workspace = Path(env["RAT_WORKSPACE"])
    assert mounted[str(workspace.parent)] == "./workspaces"
    assert mounted["/app/config/profiles"] == "./config/profiles"
    if service == "dagster":
        assert mounted[env["DAGSTER_HOME"]] == "dagster_storage"
        command = spec["command"]
        assert command[:2] == ["dagster", "dev"] and command[command.index("-m") + 1] == "ratatouille_nb.dagster"
        assert command[command.index("-p") + 1] == "3000" and command[command.index("-h") + 1] == "0.0.0.0"
        assert (ROOT / "ratatouille_nb" / "dagster.py").is_file()


def test_health_checks_and_start_order(full: dict[str, Any], minimal: dict[str, Any]) -> None:
    services = full["services"]
    for name in ("minio", "nessie", "jupyter", "dagster"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert minimal["services"]["jupyter"]["healthcheck"]["test"]
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no health check"
            else:
                assert spec["condition"] == "service_completed_successfully" and services[dep]["restart"] == "no"
    assert services["jupyter"]["depends_on"]["nessie"]["condition"] == "service_healthy"
    assert services["dagster"]["depends_on"]["jupyter"]["condition"] == "service_healthy"
    # the health checks ask the ports the services listen on
    assert "127.0.0.1:8888/api" in " ".join(services["jupyter"]["healthcheck"]["test"])
    assert "127.0.0.1:3000/server_info" in " ".join(services["dagster"]["healthcheck"]["test"])


# -- memory and profiles ------------------------------------------------------------------------


def test_memory_limits_follow_the_default_profile(full: dict[str, Any], minimal: dict[str, Any]) -> None:
    services = full["services"]
    name = env_of(services["jupyter"])["RAT_PROFILE"]
    profile = load_profile(name)
    assert memory_mb(services["minio"]) == profile.minio.memory_mb
    assert memory_mb(services["nessie"]) == profile.nessie.memory_mb
    assert memory_mb(services["jupyter"]) == profile.max_memory_mb + JUPYTER_HEADROOM_MB
    assert memory_mb(services["dagster"]) == profile.max_memory_mb + DAGSTER_HEADROOM_MB
    assert memory_mb(minimal["services"]["jupyter"]) == profile.max_memory_mb + JUPYTER_HEADROOM_MB
    raw = load(FULL)["services"]
    for service, var in (("minio", "MINIO_MEMORY"), ("nessie", "NESSIE_MEMORY"), ("jupyter", "JUPYTER_MEMORY"), ("dagster", "DAGSTER_MEMORY")):
        assert var in raw[service]["deploy"]["resources"]["limits"]["memory"], f"{service}'s limit is not overridable with {var}"


def test_docs_table_gives_each_profile_its_vm_and_limits() -> None:
    text = (ROOT / "docs" / "full-stack.md").read_text()
    for name in PROFILE_NAMES:
        rows = [line for line in text.splitlines() if line.startswith(f"| {name} |")]
        assert len(rows) == 1, f"docs/full-stack.md has no row for profile {name}"
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        _, vm, max_mb, threads, jupyter, dagster, minio, nessie = cells
        profile = load_profile(name)
        assert "GB" in vm
        assert (int(max_mb), int(threads)) == (profile.max_memory_mb, profile.threads)
        assert jupyter == f"{profile.max_memory_mb + JUPYTER_HEADROOM_MB}M"
        assert dagster == f"{profile.max_memory_mb + DAGSTER_HEADROOM_MB}M"
        assert minio == (f"{profile.minio.memory_mb}M" if profile.minio else "–")
        assert nessie == (f"{profile.nessie.memory_mb}M" if profile.nessie else "–")
    # every variable the compose files interpolate is documented
    for var in variables(load(FULL)) | variables(load(MINIMAL)):
        assert f"`{var}`" in text, f"{var} is not documented in docs/full-stack.md"


def test_config_profiles_equal_the_packaged_profiles() -> None:
    shipped = sorted(p.stem for p in (ROOT / "config" / "profiles").glob("*.yaml"))
    assert shipped == sorted(PROFILE_NAMES)
    for name in PROFILE_NAMES:
        path = ROOT / "config" / "profiles" / f"{name}.yaml"
        assert yaml.safe_load(path.read_text()) == packaged_profile(name), f"config/profiles/{name}.yaml drifted"
        assert load_profile(str(path)) == load_profile(name)
        header = path.read_text().splitlines()[0]
        assert header.startswith(f"# Resource profile '{name}', for a ") and "GB" in header


# -- the image ----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and heredoc bodies skipped."""
    out: list[tuple[str, str]] = []
    lines = iter(DOCKERFILE.read_text().splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines).strip()
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        heredoc = re.search(r"<<-?'?(\w+)'?", rest)
        if heredoc:
            for body in lines:
                if body.strip() == heredoc.group(1):
                    break
    return out


def dockerignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pat = pattern.rstrip("/")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pat) or (pat.startswith("**/") and fnmatch.fnmatch(prefix.split("/")[-1], pat[3:])):
                return True
    return False


def test_dockerfile_builds_from_the_repository() -> None:
    ignore = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")]
    instructions = dockerfile_instructions()
    copies = [args for word, args in instructions if word == "COPY" and "--from=" not in args and "<<" not in args]
    assert copies
    for args in copies:
        tokens = [t for t in shlex.split(args) if not t.startswith("--")]
        for source in tokens[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not dockerignored(source, ignore), f"COPY {source}: excluded by .dockerignore"
    # a host build of the extension must not shadow the one the image builds
    assert dockerignored("ratatouille_nb/labextension", ignore)
    assert dockerignored("ratatouille_nb/notebook/widgets/js/node_modules", ignore)
    assert not dockerignored("ratatouille_nb/notebook/widgets/static/lineage.js", ignore)
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert 'pip install ".[dagster]"' in runs
    assert "jlpm build:prod" in runs and "jupyter labextension list" in runs
    assert "jupyter_server_config.d" in runs and "labconfig/page_config.d" in runs
    # the Python the image uses satisfies requires-python
    version = re.search(r"ARG PYTHON_VERSION=(\d+\.\d+)", DOCKERFILE.read_text())
    assert version and version.group(1) == "3.11"
    assert '"duckdb==1.5.5"' in (ROOT / "pyproject.toml").read_text()


def test_dockerfile_matches_compose(full: dict[str, Any]) -> None:
    instructions = dockerfile_instructions()
    exposed = {int(p) for word, args in instructions if word == "EXPOSE" for p in args.split()}
    assert exposed == {8888, 3000}
    cmd = next(args for word, args in instructions if word == "CMD")
    assert '"--port=8888"' in cmd and '"--ip=0.0.0.0"' in cmd
    env = " ".join(args for word, args in instructions if word == "ENV")
    jupyter = env_of(full["services"]["jupyter"])
    assert f"RAT_HOME={jupyter['RAT_HOME']}" in env
    assert f"RAT_WORKSPACE={jupyter['RAT_WORKSPACE']}" in env
    text = DOCKERFILE.read_text()
    assert f"{jupyter['RAT_HOME']}" in text and "/data/dagster" in text and "/app/workspaces" in text
    # the entrypoint builds the demo where RAT_WORKSPACE points
    assert '"${RAT_DEMO_PATH:-' + jupyter["RAT_WORKSPACE"] + '}"' in text


def test_shipped_jupyter_config_disables_jupysql_plugin_and_enables_the_server_extension() -> None:
    import json

    page = json.loads((ROOT / "jupyter-config" / "labconfig" / "page_config.d" / "ratatouille_nb.json").read_text())
    assert page["disabledExtensions"]["jupysql-plugin"] is True
    server = json.loads((ROOT / "jupyter-config" / "server-config" / "ratatouille_nb.json").read_text())
    assert server["ServerApp"]["jpserver_extensions"]["ratatouille_nb.server"] is True


def entrypoint_script() -> str:
    text = DOCKERFILE.read_text()
    match = re.search(r"<<'EOF' /usr/local/bin/rat-entrypoint\n(.*?)\nEOF\n", text, re.S)
    assert match, "the Dockerfile's entrypoint heredoc is missing"
    return match.group(1)


@pytest.mark.slow
def test_entrypoint_builds_the_demo_once_and_configures_dagster(tmp_path: Path) -> None:
    script = tmp_path / "rat-entrypoint"
    script.write_text(entrypoint_script())
    script.chmod(0o755)
    bin_dir = Path(sys.executable).parent  # where `rat` is installed
    assert (bin_dir / "rat").exists()
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "RAT_HOME": str(tmp_path / "home"),
        "RAT_DEMO_PATH": str(tmp_path / "workspaces" / "demo"),
        "RAT_DEMO_ROWS": "1000",
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    first = subprocess.run([str(script), "echo", "started"], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and "WARNING" not in first.stderr, first.stdout + first.stderr
    assert first.stdout.rstrip().endswith("started")
    assert "first start, building the demo workspace" in first.stdout
    assert (tmp_path / "workspaces" / "demo" / "workspace.yaml").is_file()
    assert (tmp_path / "home" / ".demo-built").is_file()
    config = yaml.safe_load((tmp_path / "dagster" / "dagster.yaml").read_text())
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 1
    second = subprocess.run([str(script), "echo", "again"], env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and second.stdout.strip() == "again"


# -- docker-compose's own check -----------------------------------------------------------------


@pytest.mark.parametrize("path", [FULL, MINIMAL], ids=lambda p: p.name)
def test_docker_compose_config_accepts_the_file(path: Path) -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed; .ci/run installs Debian's docker-compose package")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAT_", "MINIO_", "JUPYTER_", "DAGSTER_", "NESSIE_"))}
    proc = subprocess.run([exe, "-f", str(path), "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
