"""The image's text without an engine: Dockerfile, requirements, in-image config, compose file and
Kubernetes manifests for each option, and the build plan read from a real project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from docker_support import REQUIRE_ENV
from projects import Project, bare_manifest

from amms_cli.docker import context, render
from amms_cli.docker.context import BuildOptions
from amms_cli.docker.render import ImageModel, ImageSpec, ModelsMode
from amms_cli.errors import AmmsError, ConfigError, RepositoryError
from amms_cli.project import authoring
from amms_cli.project.config import load_config
from amms_cli.repository.manifest import Manifest, read_manifest, write_manifest

K8S_VERSIONS = ("1.28.0", "1.33.0")
TEMPLATES = context.default_templates()
PINS = {"numpy": "2.4.6", "scikit-learn": "1.9.1"}


def spec(mode: ModelsMode = "copy", base: str = "python:3.11-slim", tag: str = "amms-demo:1.2") -> ImageSpec:
    models = (
        ImageModel("iris", "1.0.1", ("1.0.0", "1.0.1"), "scikit-learn"),
        ImageModel("simple_text", "2.0.0", ("2.0.0",), "scikit-learn"),
    )
    return ImageSpec(tag=tag, base_image=base, models_mode=mode, models=models, pins=PINS)


def instructions(dockerfile: str) -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    joined = dockerfile.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def only(lines: list[str], keyword: str) -> list[str]:
    return [line for line in lines if line.split(" ", 1)[0] == keyword]


def manifest(name: str, version: str, requirements: dict[str, str]) -> Manifest:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    return bare_manifest(name, version, created_at=created, entrypoint="clf.pkl", requirements=requirements)


# --- Dockerfile ---------------------------------------------------------------------------------------


def test_copy_dockerfile_is_a_small_non_root_venv_image_with_the_models_inside() -> None:
    lines = instructions(render.render_dockerfile(spec("copy"), TEMPLATES))
    assert only(lines, "FROM") == ["FROM python:3.11-slim AS venv", "FROM python:3.11-slim"]
    assert any("python3 -m venv /opt/amms/venv" in line for line in only(lines, "RUN"))
    assert "COPY --from=venv /opt/amms/venv /opt/amms/venv" in lines
    assert "COPY models/ /srv/amms/models/" in lines
    assert "COPY amms.json /srv/amms/amms.json" in lines
    assert only(lines, "USER") == ["USER 10001:10001"]
    assert only(lines, "EXPOSE") == ["EXPOSE 8000"]
    entrypoint = json.loads(only(lines, "ENTRYPOINT")[0].removeprefix("ENTRYPOINT "))
    assert entrypoint == ["amms", "serve", "--config", "/srv/amms/amms.json", "--host", "0.0.0.0", "--port", "8000"]
    assert only(lines, "CMD") == ["CMD []"]


def test_the_user_is_set_after_every_root_step_and_pip_leaves_no_cache() -> None:
    lines = instructions(render.render_dockerfile(spec("copy"), TEMPLATES))
    last_run = max(i for i, line in enumerate(lines) if line.startswith(("RUN", "COPY")))
    assert lines.index("USER 10001:10001") > last_run
    assert any("PIP_NO_CACHE_DIR=1" in line for line in only(lines, "ENV"))
    assert any("uninstall --yes --quiet pip setuptools" in line for line in only(lines, "RUN"))


def test_healthcheck_uses_python_on_the_readiness_route() -> None:
    (healthcheck,) = only(instructions(render.render_dockerfile(spec(), TEMPLATES)), "HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"
    assert "http://127.0.0.1:8000/health/ready" in command[2]
    assert "curl" not in healthcheck


def test_volume_dockerfile_expects_a_mount_and_watches_it() -> None:
    lines = instructions(render.render_dockerfile(spec("volume"), TEMPLATES))
    assert not any(line.startswith("COPY models/") for line in lines)
    assert "RUN mkdir -p /srv/amms/models" in lines
    assert only(lines, "CMD") == ['CMD ["--watch"]']


def test_labels_list_models_versions_and_pins_and_come_last() -> None:
    lines = instructions(render.render_dockerfile(spec(), TEMPLATES))
    assert lines[-1].startswith("LABEL ") and lines[-1].count("=") >= 6
    labels = render.image_labels(spec())
    assert labels["io.amms.models"] == "iris=1.0.1,simple_text=2.0.0"
    assert labels["io.amms.model.iris.versions"] == "1.0.0,1.0.1"
    assert labels["io.amms.requirements"] == "numpy==2.4.6 scikit-learn==1.9.1"
    assert labels["io.amms.models-mode"] == "copy"
    assert 'io.amms.models="iris=1.0.1,simple_text=2.0.0"' in lines[-1]


def test_base_image_option_is_used_for_both_stages() -> None:
    lines = instructions(render.render_dockerfile(spec(base="registry.example:5000/team/py:3.11-bookworm"), TEMPLATES))
    assert only(lines, "FROM") == [
        "FROM registry.example:5000/team/py:3.11-bookworm AS venv",
        "FROM registry.example:5000/team/py:3.11-bookworm",
    ]


@pytest.mark.parametrize("bad", ["python:3.11-slim\nRUN rm -rf /", "python:3.11-slim\n", "Python:3.11", "py 3", ""])
def test_a_base_image_that_is_not_a_reference_is_refused(bad: str) -> None:
    with pytest.raises(AmmsError, match=r"^--base-image '.*' is not an image reference$"):
        render.render_dockerfile(spec(base=bad), TEMPLATES)


def test_label_values_cannot_expand_variables_or_end_the_instruction() -> None:
    assert render.docker_quote('a "b" $HOME \\') == '"a \\"b\\" \\$HOME \\\\"'
    with pytest.raises(AmmsError, match="newline"):
        render.docker_quote("a\nRUN id")


# --- requirements and config --------------------------------------------------------------------------


def test_requirements_keep_amms_dependencies_drop_extras_and_pin_frameworks() -> None:
    text = render.render_requirements(
        ["fastapi>=0.110", "uvicorn[standard]>=0.29", 'onnxruntime>=1.17; extra == "onnx"', "numpy>=1.24"], PINS
    )
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["fastapi>=0.110", "uvicorn[standard]>=0.29", "numpy>=1.24", "numpy==2.4.6", "scikit-learn==1.9.1"]


def test_pins_merge_across_models_and_names_are_compared_canonically() -> None:
    merged = render.merge_pins(
        [
            manifest("a", "1.0.0", {"scikit-learn": "1.9.1", "numpy": "2.4.6"}),
            manifest("b", "2.0.0", {"scikit_learn": "1.9.1", "joblib": "1.5.0"}),
        ]
    )
    assert merged == {"joblib": "1.5.0", "numpy": "2.4.6", "scikit-learn": "1.9.1"}


def test_conflicting_pins_name_both_models_and_versions() -> None:
    with pytest.raises(RepositoryError) as caught:
        render.merge_pins(
            [manifest("a", "1.0.0", {"scikit-learn": "1.9.1"}), manifest("b", "2.0.3", {"Scikit-Learn": "1.5.2"})]
        )
    assert caught.value.message == (
        "conflicting pins for Scikit-Learn: a 1.0.0 was saved with 1.9.1, b 2.0.3 with 1.5.2"
    )
    assert caught.value.hint and "bump-version" in caught.value.hint


def test_image_config_reads_every_model_from_the_image_folder(two_models: Project) -> None:
    entries = json.loads(render.render_image_config(load_config(two_models.config).models))
    assert [(e["model_name"], e["load_type"], e["load_url"]) for e in entries] == [
        ("iris", "SHARE", "/srv/amms/models"),
        ("other", "SHARE", "/srv/amms/models"),
    ]


# --- names and commands -------------------------------------------------------------------------------


def test_default_tag_and_app_name_are_valid_names() -> None:
    assert render.default_tag(Path("/home/me/My Project_2")) == "amms-my-project-2:latest"
    assert render.default_tag(Path("/")) == "amms:latest"
    assert render.app_name("registry.example:5000/team/Amms_Demo:1.0") == "amms-demo"
    render.check_reference(render.default_tag(Path("/x/Ünïcode")), "--tag")


def test_run_command_mounts_the_models_folder_only_for_volume_images() -> None:
    models = Path("/srv/my models")
    assert render.run_command(spec("copy"), models) == "docker run --rm -p 8000:8000 amms-demo:1.2"
    assert render.run_command(spec("volume"), models) == (
        "docker run --rm -p 8000:8000 -v '/srv/my models:/srv/amms/models:ro' amms-demo:1.2"
    )


# --- docker-compose.yml -------------------------------------------------------------------------------


def test_volume_compose_mounts_the_models_folder_read_only_and_watches() -> None:
    compose = yaml.safe_load(render.render_compose(spec("volume"), "./models", TEMPLATES))
    service = compose["services"]["amms-demo"]
    assert service["image"] == "amms-demo:1.2"
    assert service["ports"] == ["${AMMS_PORT:-8000}:8000"]
    assert service["volumes"] == [
        {"type": "bind", "source": "./models", "target": "/srv/amms/models", "read_only": True}
    ]
    assert service["command"] == ["--watch"]


def test_copy_compose_mounts_nothing() -> None:
    service = yaml.safe_load(render.render_compose(spec("copy"), "", TEMPLATES))["services"]["amms-demo"]
    assert "volumes" not in service
    assert service["command"] == []


@pytest.mark.parametrize("mode", ["copy", "volume"])
def test_docker_compose_accepts_the_file(tmp_path: Path, mode: ModelsMode) -> None:
    if shutil.which("docker-compose") is None:
        reason = "docker-compose is not installed (scripts/system-deps.sh installs it)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1, so it must not skip")
        pytest.skip(reason)
    (tmp_path / "models").mkdir()
    path = tmp_path / "docker-compose.yml"
    path.write_text(render.render_compose(spec(mode), "./models", TEMPLATES))
    result = subprocess.run(
        ["docker-compose", "-f", str(path), "config"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "amms-demo:1.2" in result.stdout


# --- Kubernetes ---------------------------------------------------------------------------------------


def k8s(mode: ModelsMode) -> dict[str, dict[str, Any]]:
    return {name: yaml.safe_load(text) for name, text in render.render_k8s(spec(mode), TEMPLATES).items()}


@pytest.mark.parametrize("mode", ["copy", "volume"])
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_against_the_kubernetes_schemas(mode: ModelsMode, version: str) -> None:
    for name, document in k8s(mode).items():
        if document["kind"] == "InferenceService":
            continue  # a CRD: checked below through its pod spec
        assert kubernetes_validate.validate(document, version, strict=True), name


@pytest.mark.parametrize("mode", ["copy", "volume"])
def test_deployment_has_probes_resources_grace_and_runs_as_non_root(mode: ModelsMode) -> None:
    deployment = k8s(mode)["deployment.yaml"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "amms-demo:1.2"
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "amms-demo"}
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_volume_manifests_mount_a_claim_read_only_and_poll_it() -> None:
    manifests = k8s("volume")
    assert set(manifests) == {"deployment.yaml", "service.yaml", "hpa.yaml", "pvc.yaml", "inferenceservice.yaml"}
    pvc = manifests["pvc.yaml"]
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    pod = manifests["deployment.yaml"]["spec"]["template"]["spec"]
    claim = next(v for v in pod["volumes"] if v["name"] == "models")["persistentVolumeClaim"]
    assert claim == {"claimName": pvc["metadata"]["name"], "readOnly": True}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "models")
    assert mount == {"name": "models", "mountPath": "/srv/amms/models", "readOnly": True}
    assert pod["containers"][0]["args"] == ["--watch", "--poll", "2"]


def test_copy_manifests_have_no_claim() -> None:
    manifests = k8s("copy")
    assert "pvc.yaml" not in manifests
    pod = manifests["deployment.yaml"]["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert pod["containers"][0]["args"] == []


def test_service_and_hpa_target_the_deployment() -> None:
    manifests = k8s("copy")
    service, hpa = manifests["service.yaml"], manifests["hpa.yaml"]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "amms-demo"}
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "amms-demo"}
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 10


@pytest.mark.parametrize("mode", ["copy", "volume"])
def test_inference_service_is_a_kserve_custom_predictor_with_a_valid_pod_spec(mode: ModelsMode) -> None:
    service = k8s(mode)["inferenceservice.yaml"]
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = dict(service["spec"]["predictor"])
    assert predictor.pop("minReplicas") == 2 and predictor.pop("maxReplicas") == 10
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container" and container["image"] == "amms-demo:1.2"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    # what remains of the predictor is a pod spec: validate it as one
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": predictor}
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)


def test_a_broken_manifest_does_not_validate() -> None:
    """The schema check is real: a string where an integer belongs fails."""
    deployment = k8s("copy")["deployment.yaml"]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


# --- the plan and the context, from a real project ----------------------------------------------------


@pytest.fixture(scope="module")
def two_models_once(tmp_path_factory: pytest.TempPathFactory, artifacts: dict[str, Path]) -> Project:
    """iris 1.0.0 and 1.0.1 (pickle) and other 1.0.0 (joblib), published once; read-only."""
    project = Project(tmp_path_factory.mktemp("two_models") / "proj")
    authoring.init_project(project.root)
    authoring.add_model(project.config, artifacts["pickle"], name="iris")
    authoring.add_model(project.config, artifacts["joblib"], name="other")
    authoring.bump_version(project.config, "iris")
    return project


@pytest.fixture
def two_models(two_models_once: Project, tmp_path: Path) -> Project:
    return two_models_once.copy_to(tmp_path / "proj")


def test_plan_takes_the_served_versions_and_the_pins_their_manifests_recorded(two_models: Project) -> None:
    plan = context.plan_build(load_config(two_models.config), BuildOptions(tag="t:1", models_mode="volume"))
    assert [(m.name, m.served, m.versions) for m in plan.spec.models] == [
        ("iris", "1.0.1", ("1.0.1",)),
        ("other", "1.0.0", ("1.0.0",)),
    ]
    saved_with = two_models.manifest("iris", "1.0.1")["requirements"]
    assert plan.spec.pins["scikit-learn"] == saved_with["scikit-learn"]
    assert plan.models_root == two_models.models.absolute()


def test_pinned_versions_are_included_beside_the_served_one(two_models: Project) -> None:
    entries = two_models.entries()
    entries[0]["pinned_versions"] = ["1.0.0"]
    two_models.write_entries(entries)
    plan = context.plan_build(load_config(two_models.config), BuildOptions())
    assert plan.spec.models[0].versions == ("1.0.0", "1.0.1")
    assert plan.spec.models[0].served == "1.0.1"


def test_conflicting_pins_in_a_project_are_an_error_before_anything_is_written(two_models: Project) -> None:
    folder = two_models.models / "other" / "1.0.0"
    old = read_manifest(folder)
    write_manifest(folder, old.model_copy(update={"requirements": {**old.requirements, "scikit-learn": "1.5.2"}}))
    with pytest.raises(RepositoryError, match=r"conflicting pins for scikit-learn: iris 1\.0\.1 was saved with .*"):
        context.plan_build(load_config(two_models.config), BuildOptions())
    assert not (two_models.root / ".amms").exists()


def test_a_model_without_a_servable_version_is_an_error(two_models: Project) -> None:
    entries = two_models.entries()
    entries[0]["aspired_version"] = "2.x"
    two_models.write_entries(entries)
    with pytest.raises(RepositoryError, match=r"model 'iris': no complete version matching 2\.x"):
        context.plan_build(load_config(two_models.config), BuildOptions())


def test_an_empty_config_is_an_error(project: Project) -> None:
    with pytest.raises(ConfigError, match="no models to put in an image"):
        context.plan_build(load_config(project.config), BuildOptions())


def test_volume_mode_needs_one_models_folder(two_models: Project, tmp_path: Path) -> None:
    entries = two_models.entries()
    shutil.move(two_models.models / "other", tmp_path / "other")
    entries[1]["load_url"] = str(tmp_path)
    two_models.write_entries(entries)
    config = load_config(two_models.config)
    assert context.plan_build(config, BuildOptions(models_mode="copy")).models_root is None
    with pytest.raises(ConfigError, match="--models volume mounts one folder, but the models live in 2"):
        context.plan_build(config, BuildOptions(models_mode="volume"))


@pytest.mark.parametrize("mode", ["copy", "volume"])
def test_context_holds_the_dockerfile_the_wheel_of_this_tree_and_copied_models(
    two_models: Project, mode: ModelsMode
) -> None:
    plan = context.plan_build(load_config(two_models.config), BuildOptions(tag="t:1", models_mode=mode))
    built = context.write_context(plan, TEMPLATES)
    assert built == two_models.root / ".amms" / "build"
    assert (built / "Dockerfile").read_text() == render.render_dockerfile(plan.spec, TEMPLATES)
    (wheel,) = (built / "wheels").glob("amms_cli-*.whl")
    requirements = (built / "requirements.txt").read_text().splitlines()
    assert "fastapi>=0.110" in requirements and f"scikit-learn=={plan.spec.pins['scikit-learn']}" in requirements
    assert json.loads((built / "amms.json").read_text())[0]["load_url"] == "/srv/amms/models"
    copied = sorted(p.relative_to(built / "models").as_posix() for p in (built / "models").glob("*/*"))
    assert copied == (["iris/1.0.1", "other/1.0.0"] if mode == "copy" else [])
    assert wheel.stat().st_size > 10_000


def test_a_tampered_artifact_is_refused_before_it_is_copied_into_an_image(two_models: Project) -> None:
    artifact = next(p for p in (two_models.models / "iris" / "1.0.1").iterdir() if p.suffix == ".pkl")
    artifact.write_bytes(artifact.read_bytes()[:-1] + b"\x00")
    plan = context.plan_build(load_config(two_models.config), BuildOptions())
    with pytest.raises(RepositoryError, match=r"^model 'iris': 1\.0\.1: checksum mismatch for 'clf\.pkl'$"):
        context.write_context(plan, TEMPLATES)


def test_compose_and_k8s_files_are_written_next_to_the_config(two_models: Project, tmp_path: Path) -> None:
    plan = context.plan_build(load_config(two_models.config), BuildOptions(tag="t:1", models_mode="volume"))
    compose = context.write_compose(plan, TEMPLATES)
    assert compose == two_models.root / "docker-compose.yml"
    assert yaml.safe_load(compose.read_text())["services"]["t"]["volumes"][0]["source"] == "./models"
    written = context.write_k8s(plan, TEMPLATES, tmp_path / "k8s")
    assert sorted(p.name for p in written) == sorted(render.K8S_FILES)
