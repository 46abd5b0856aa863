"""docker/: the compose file is valid Compose and wires the server to PostgreSQL and Redis.

No Docker engine (nor the compose plugin) runs on the CI machine, so `docker compose config`
cannot run here; instead the file is validated against the official compose-spec JSON schema
(vendored by check-jsonschema, no network), and what the schema cannot know is checked by
reading it: the services exist, their dependencies resolve, the build points at our Dockerfile,
and every file the Dockerfile copies is in the repository.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))
    return document


def test_compose_file_follows_the_compose_spec() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        config = subprocess.run(
            [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert config.returncode == 0, config.stderr


def test_server_runs_on_postgres_with_redis() -> None:
    services = compose()["services"]
    assert {"server", "postgres", "redis"} <= services.keys()
    server = services["server"]
    assert server["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    assert (COMPOSE.parent / server["build"]["context"] / server["build"]["dockerfile"]).is_file()
    assert set(server["depends_on"]) == {"postgres", "redis"}
    for service in services.values():
        for dependency in service.get("depends_on", {}):
            assert dependency in services
            assert "healthcheck" in services[dependency]  # service_healthy needs one
    # The URL the server gets is one inkgraph accepts and maps to asyncpg.
    url = server["environment"]["DATABASE_URL"]
    defaults = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", url)
    assert Settings(database_url=defaults).async_url().drivername == "postgresql+asyncpg"
    # The login/sign-up throttle is shared through the compose Redis, under one prefix per
    # deployment, so replicas of one deployment share their counters and deployments do not.
    prefixes = set()
    for name in ("server", "server-mariadb"):
        environment = services[name]["environment"]
        storage = Settings(throttle_storage_url=environment["THROTTLE_STORAGE_URL"])
        assert storage.throttle_storage_url.startswith("redis://redis:")
        prefixes.add(environment.get("THROTTLE_KEY_PREFIX", Settings().throttle_key_prefix))
    assert len(prefixes) == 2


def test_dockerfile_copies_only_what_exists_and_serves_after_migrating() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.MULTILINE):
        *sources, _target = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    assert "uv sync --frozen --no-dev" in text  # the image installs exactly the lock
    assert 'CMD ["sh", "-c", "inkgraph migrate && exec inkgraph serve"]' in text
