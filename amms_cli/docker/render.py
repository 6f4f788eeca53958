"""Pure text for an amms image: the merged requirement pins, the Dockerfile, requirements.txt, the
in-image config, docker-compose.yml and Kubernetes manifests. Nothing here touches the engine or writes
files; the only I/O is reading the Jinja templates shipped in the package (`amms_cli/templates/`)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2

from amms_cli.errors import AmmsError, RepositoryError
from amms_cli.project.config import ModelEntry, render_config
from amms_cli.repository.manifest import Manifest

ModelsMode = Literal["copy", "volume"]

WORKDIR = "/srv/amms"
CONFIG_PATH = f"{WORKDIR}/amms.json"
MODELS_DIR = f"{WORKDIR}/models"
PORT = 8000
UID = 10001
GRACE_SECONDS = 30
DEFAULT_BASE_IMAGE = "python:3.11-slim"
LABEL_PREFIX = "io.amms"
STAGE_LABEL = f"{LABEL_PREFIX}.stage"  # marks the venv build stage, kept as dangling build cache

# Docker's reference grammar, simplified: [registry[:port]/]path[:tag][@digest], lowercase path.
_REFERENCE_RE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)

_EXTRA_MARKER = re.compile(r"\bextra\s*==")


@dataclass(frozen=True)
class ImageModel:
    """One model as it goes into an image: the version served at build time and every version
    included (the served one plus pinned ones) with the framework that saved it."""

    name: str
    served: str
    versions: tuple[str, ...]
    framework: str


@dataclass(frozen=True)
class ImageSpec:
    """Everything the Dockerfile, compose file and manifests are rendered from."""

    tag: str
    base_image: str
    models_mode: ModelsMode
    models: tuple[ImageModel, ...]
    pins: Mapping[str, str] = field(default_factory=dict)  # distribution -> exact version

    @property
    def serve_args(self) -> list[str]:
        """Arguments appended to the image's `amms serve` entrypoint by default."""
        return ["--watch"] if self.models_mode == "volume" else []


TEMPLATE_PACKAGE = "amms_cli"
TEMPLATE_FOLDER = "templates"  # amms_cli/templates/ in the source tree, package data in the wheel


@dataclass(frozen=True)
class Templates:
    """The Jinja environment over `amms_cli/templates/` (Dockerfile.template, .dockerignore, the compose
    file and the Kubernetes manifests), read through importlib.resources so that an installed wheel
    renders exactly what a checkout does."""

    env: jinja2.Environment

    @classmethod
    def packaged(cls) -> Templates:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_FOLDER),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,  # Dockerfiles and YAML, not HTML; values are quoted by filters below
        )
        env.filters["dockerquote"] = docker_quote
        return cls(env)

    def render(self, template: str, /, **values: Any) -> str:
        try:
            return self.env.get_template(template).render(**values)
        except jinja2.TemplateNotFound:
            raise AmmsError(
                f"template {template} is missing from the installed amms ({TEMPLATE_PACKAGE}/{TEMPLATE_FOLDER}/)",
                hint="reinstall amms: its wheel ships the templates as package data",
            ) from None


def check_reference(value: str, option: str) -> str:
    """An image reference, refused before it can reach a Dockerfile line (newlines, spaces, caps)."""
    if not _REFERENCE_RE.fullmatch(value):
        raise AmmsError(f"{option} {value!r} is not an image reference", hint="use NAME:TAG, e.g. amms-demo:latest")
    return value


def default_tag(project_dir: Path) -> str:
    """`amms-<project folder>:latest`, with the folder name made a valid repository name."""
    slug = re.sub(r"[^a-z0-9]+", "-", project_dir.name.lower()).strip("-")[:40].strip("-")
    return f"amms-{slug}:latest" if slug else "amms:latest"


def canonical(name: str) -> str:
    """PEP 503 name normalisation: scikit_learn, Scikit-Learn and scikit.learn are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def merge_pins(manifests: Iterable[Manifest]) -> dict[str, str]:
    """One exact version per distribution across every manifest; two models saved with different
    versions of one library cannot share an image, so that is an error naming both."""
    chosen: dict[str, tuple[str, str, Manifest]] = {}
    for manifest in manifests:
        for dist, version in manifest.requirements.items():
            key = canonical(dist)
            seen = chosen.setdefault(key, (dist, version, manifest))
            if seen[1] != version:
                first = seen[2]
                raise RepositoryError(
                    f"conflicting pins for {dist}: {first.model_name} {first.version} was saved with "
                    f"{seen[1]}, {manifest.model_name} {manifest.version} with {version}",
                    hint="republish one model with the same library version (amms bump-version NAME PATH) "
                    "or build separate images with separate configs",
                )
    return {dist: version for dist, version, _ in sorted(chosen.values(), key=lambda item: canonical(item[0]))}


def image_labels(spec: ImageSpec) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.title": "amms",
        "org.opencontainers.image.description": "amms model server",
        f"{LABEL_PREFIX}.models": ",".join(f"{m.name}={m.served}" for m in spec.models),
        f"{LABEL_PREFIX}.models-mode": spec.models_mode,
        f"{LABEL_PREFIX}.requirements": " ".join(f"{d}=={v}" for d, v in spec.pins.items()),
    }
    for model in spec.models:
        labels[f"{LABEL_PREFIX}.model.{model.name}.versions"] = ",".join(model.versions)
        labels[f"{LABEL_PREFIX}.model.{model.name}.framework"] = model.framework
    return labels


def docker_quote(value: str) -> str:
    """A Dockerfile double-quoted string ($ would be expanded, newlines would end the instruction)."""
    if "\n" in value or "\r" in value:
        raise AmmsError(f"label value {value!r} contains a newline")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def entrypoint(port: int = PORT) -> list[str]:
    return ["amms", "serve", "--config", CONFIG_PATH, "--host", "0.0.0.0", "--port", str(port)]


def render_dockerfile(spec: ImageSpec, templates: Templates) -> str:
    check_reference(spec.base_image, "--base-image")
    return templates.render(
        "Dockerfile.template",
        base_image=spec.base_image,
        models_mode=spec.models_mode,
        models=spec.models,
        labels=image_labels(spec),
        entrypoint=entrypoint(),
        command=spec.serve_args,
        config_path=CONFIG_PATH,
        models_dir=MODELS_DIR,
        workdir=WORKDIR,
        port=PORT,
        uid=UID,
        stage_label=STAGE_LABEL,
    )


def render_requirements(amms_requires: Sequence[str], pins: Mapping[str, str]) -> str:
    """requirements.txt: amms' own dependencies (its wheel's Requires-Dist, extras dropped) and the pins."""
    own = [req.strip() for req in amms_requires if not _EXTRA_MARKER.search(req.partition(";")[2])]
    lines = ["# amms' own dependencies, from its wheel's metadata", *own]
    lines.append("# each library at the version the served models were saved with")
    lines += [f"{dist}=={version}" for dist, version in pins.items()]
    return "\n".join(lines) + "\n"


def render_image_config(entries: Sequence[ModelEntry]) -> str:
    """The config baked into the image: the host's entries, every model read from the image's folder."""
    return render_config([entry.model_copy(update={"load_type": "SHARE", "load_url": MODELS_DIR}) for entry in entries])


def render_dockerignore(templates: Templates) -> str:
    return templates.render(".dockerignore")


def render_compose(spec: ImageSpec, models_source: str, templates: Templates) -> str:
    """docker-compose.yml; `models_source` is the host folder as the compose file should name it."""
    return templates.render(
        "docker-compose.yml.j2",
        service=app_name(spec.tag),
        image=spec.tag,
        port=PORT,
        models_mode=spec.models_mode,
        models_source=models_source,
        models_dir=MODELS_DIR,
        command=spec.serve_args,
        grace_seconds=GRACE_SECONDS,
    )


@dataclass(frozen=True)
class K8sOptions:
    replicas: int = 2
    max_replicas: int = 10
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"
    storage: str = "1Gi"
    poll_seconds: float = 2.0  # network volumes deliver no inotify events to other nodes


K8S_FILES = ("deployment.yaml", "service.yaml", "hpa.yaml", "pvc.yaml", "inferenceservice.yaml")


def render_k8s(spec: ImageSpec, templates: Templates, options: K8sOptions | None = None) -> dict[str, str]:
    """File name -> manifest text. The PVC only exists for `--models volume`."""
    options = options or K8sOptions()
    name = app_name(spec.tag)
    args = ["--watch", "--poll", f"{options.poll_seconds:g}"] if spec.models_mode == "volume" else []
    values = {
        "name": name,
        "claim": f"{name}-models",
        "image": spec.tag,
        "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "amms"},
        "selector": {"app.kubernetes.io/name": name},
        "annotations": {"amms.io/models": ",".join(f"{m.name}={m.served}" for m in spec.models)},
        "args": args,
        "models_mode": spec.models_mode,
        "models_dir": MODELS_DIR,
        "port": PORT,
        "uid": UID,
        "grace_seconds": GRACE_SECONDS,
        **asdict(options),
    }
    files = [f for f in K8S_FILES if f != "pvc.yaml" or spec.models_mode == "volume"]
    return {file: templates.render(f"k8s/{file}.j2", **values) for file in files}


def app_name(tag: str) -> str:
    """A DNS-1123 label from an image tag: registry.example/team/amms-demo:1.0 -> amms-demo."""
    repository = tag.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    slug = re.sub(r"[^a-z0-9-]+", "-", repository.lower()).strip("-")[:63].strip("-")
    return slug or "amms"


def build_command(spec: ImageSpec, context_dir: Path) -> str:
    """The `docker build` line that builds a context written with `amms build --render-only`."""
    return shlex.join(["docker", "build", "--tag", spec.tag, str(context_dir)])


def run_command(spec: ImageSpec, models_dir: Path | None, port: int = PORT) -> str:
    """The `docker run` line printed after a build."""
    parts = ["docker", "run", "--rm", "-p", f"{port}:{PORT}"]
    if spec.models_mode == "volume" and models_dir is not None:
        parts += ["-v", f"{models_dir}:{MODELS_DIR}:ro"]
    return shlex.join([*parts, spec.tag])
