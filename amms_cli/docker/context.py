"""The build context on disk: which model versions go into an image (read from the repository), the
running amms as a wheel, and the files `amms build` writes under `.amms/build/`."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from amms_cli.docker import distribution, render
from amms_cli.docker.render import ImageModel, ImageSpec, ModelsMode, Templates
from amms_cli.errors import ConfigError, RepositoryError
from amms_cli.project.config import AmmsConfig, ModelEntry
from amms_cli.repository import atomic_files
from amms_cli.repository.manifest import Manifest
from amms_cli.repository.scan import VersionOnDisk, scan_model, verify_version
from amms_cli.repository.versions import Version

BUILD_DIR = Path(".amms") / "build"


@dataclass(frozen=True)
class BuildOptions:
    tag: str | None = None
    base_image: str = render.DEFAULT_BASE_IMAGE
    models_mode: ModelsMode = "copy"


@dataclass(frozen=True)
class IncludedVersion:
    entry: ModelEntry
    version: VersionOnDisk
    manifest: Manifest
    served: bool  # the version served at build time (the others are pinned)


@dataclass(frozen=True)
class BuildPlan:
    """What one `amms build` will produce, decided before anything is written or built."""

    config: AmmsConfig
    spec: ImageSpec
    included: tuple[IncludedVersion, ...]
    models_root: Path | None  # the one host folder holding every model (what a volume mounts)

    @property
    def context_dir(self) -> Path:
        return self.config.base_dir / BUILD_DIR


def default_templates() -> Templates:
    return Templates.packaged()


def plan_build(config: AmmsConfig, options: BuildOptions) -> BuildPlan:
    """Choose the versions (served + pinned) of every model, merge their pins and check the names.
    Raises before any file is written: no models, no servable version, conflicting pins."""
    if not config.models:
        raise ConfigError(f"{config.path.name}: no models to put in an image", hint="amms add-model PATH --name NAME")
    root = models_root(config, required=options.models_mode == "volume")
    included = [item for entry in config.models for item in _included_versions(config, entry)]
    spec = ImageSpec(
        tag=render.check_reference(options.tag or render.default_tag(config.base_dir), "--tag"),
        base_image=render.check_reference(options.base_image, "--base-image"),
        models_mode=options.models_mode,
        models=tuple(_image_model(entry, included) for entry in config.models),
        pins=render.merge_pins(item.manifest for item in included),
    )
    return BuildPlan(config, spec, tuple(included), root)


def _included_versions(config: AmmsConfig, entry: ModelEntry) -> list[IncludedVersion]:
    folder = config.model_dir(entry)
    on_disk = scan_model(folder, entry.model_name)
    served = on_disk.resolve(entry.pattern)
    if served is None or served.manifest is None:
        raise RepositoryError(
            f"model '{entry.model_name}': no complete version matching {entry.aspired_version} in {folder}",
            hint=f"publish one (amms bump-version {entry.model_name} PATH) or change its aspired_version",
        )
    included = {served.version: IncludedVersion(entry, served, served.manifest, served=True)}
    for text in entry.pinned_versions:
        pinned = on_disk.get(Version.parse(text))
        if pinned is not None and pinned.manifest is not None and pinned.version not in included:
            included[pinned.version] = IncludedVersion(entry, pinned, pinned.manifest, served=False)
    return [included[key] for key in sorted(included)]


def _image_model(entry: ModelEntry, included: list[IncludedVersion]) -> ImageModel:
    mine = [item for item in included if item.entry.model_name == entry.model_name]
    served = next(item for item in mine if item.served)
    return ImageModel(
        name=entry.model_name,
        served=str(served.version.version),
        versions=tuple(str(item.version.version) for item in mine),
        framework=served.manifest.framework,
    )


def models_root(config: AmmsConfig, required: bool) -> Path | None:
    """The single folder that holds every model; `--models volume` mounts it, so it must be one."""
    roots = sorted({entry.source(config.base_dir).watch_root().absolute() for entry in config.models})
    if len(roots) == 1:
        return roots[0]
    if required:
        raise ConfigError(
            f"--models volume mounts one folder, but the models live in {len(roots)}: "
            + ", ".join(str(root) for root in roots),
            hint="give every entry the same load_url, or build with --models copy",
        )
    return None


def write_context(plan: BuildPlan, templates: Templates) -> Path:
    """Write the build context afresh: Dockerfile, .dockerignore, requirements.txt, the in-image config,
    the amms wheel and, for `--models copy`, the included version folders (checksums verified first)."""
    if plan.spec.models_mode == "copy":
        _verify_included(plan.included)
    context = plan.context_dir
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    wheel = distribution.amms_wheel(context / "wheels")
    files = {
        "Dockerfile": render.render_dockerfile(plan.spec, templates),
        ".dockerignore": render.render_dockerignore(templates),
        "requirements.txt": render.render_requirements(wheel.requires, plan.spec.pins),
        "amms.json": render.render_image_config(plan.config.models),
    }
    for name, text in files.items():
        atomic_files.atomic_write_text(context / name, text)
    (context / "models").mkdir()
    if plan.spec.models_mode == "copy":
        for item in plan.included:
            shutil.copytree(item.version.path, context / "models" / item.entry.model_name / item.version.path.name)
    return context


def _verify_included(included: tuple[IncludedVersion, ...]) -> None:
    for item in included:
        problem = verify_version(item.version)
        if problem:
            raise RepositoryError(f"model '{item.entry.model_name}': {problem}")  # problem names the version


def write_compose(plan: BuildPlan, templates: Templates) -> Path:
    """docker-compose.yml next to the config; the models folder is named relative to it when inside."""
    target = plan.config.base_dir / "docker-compose.yml"
    source = ""
    if plan.models_root is not None:
        base = plan.config.base_dir.absolute()
        inside = plan.models_root.is_relative_to(base)
        source = f"./{plan.models_root.relative_to(base).as_posix()}" if inside else str(plan.models_root)
    atomic_files.atomic_write_text(target, render.render_compose(plan.spec, source, templates))
    return target


def write_k8s(plan: BuildPlan, templates: Templates, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render.render_k8s(plan.spec, templates).items():
        atomic_files.atomic_write_text(directory / name, text)
        written.append(directory / name)
    return written
