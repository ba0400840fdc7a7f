//! Inference jobs, in the sandbox: the miner never runs a renter's model in its own process.
//!
//! The model and the inputs are written to a directory of their own (readable, not
//! writable, by the job), which the container sees read-only at `/in`. The container's root
//! holds only the runner's shared libraries ([`unet_sandbox::rootfs::program_rootfs`]); the
//! runner binary, `unet-onnx-run` (crate `unet-onnx`, installed beside `unet`), is bound
//! read-only at `/bin/unet-onnx-run`. Everything else is what any job gets ([`super::exec`]):
//! its own user, pid, mount and network (loopback only) namespaces, no capabilities, the
//! seccomp profile, and cgroup limits on memory (the provider's per-chip memory), pids and
//! CPU. At the wall time the whole container is killed, so a model that loops, or that tract
//! cannot interrupt, no longer holds a thread of the miner.
//!
//! The runner prints the outputs as one JSON array on stdout, read back here with a size cap
//! ([`MAX_OUTPUT_BYTES`]) and decoded as the contract's [`TensorOut`]; what the runner
//! refuses comes back as its one line on stderr.

use super::exec::{Program, SandboxConfig, Workload};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};
use unet_renter::job::{Limit, TensorIn, TensorOut};

/// The runner's file name.
pub const RUNNER: &str = "unet-onnx-run";

/// Bytes of the runner's output kept: its outputs as JSON. Past it the job is stopped.
pub const MAX_OUTPUT_BYTES: u64 = 64 << 20;

/// The runner's exit status for a model or inputs it refused (`unet_onnx::EXIT_REFUSED`).
const EXIT_REFUSED: i32 = 2;

/// The model's and the inputs' file names in `/in`.
const MODEL: &str = "model.onnx";
const INPUTS: &str = "inputs.json";

/// Bytes of `/tmp` (a tmpfs) and of any one file the runner may write.
const FILE_BYTES: u64 = 16 << 20;

/// How an inference job ended.
#[derive(Debug, PartialEq)]
pub enum OnnxOutcome {
    /// The model ran; its outputs.
    Outputs(Vec<TensorOut>),
    /// The model or inputs were refused, or the job could not start: why.
    Failed(String),
    /// A limit stopped it: which, and what the runner had said on stderr.
    Stopped(Limit, String),
}

/// The ONNX runner: a program, and the subcommand that makes it the runner (`unet
/// onnx-run`), if it needs one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runner {
    /// The program on the host.
    pub binary: PathBuf,
    /// `onnx-run` when the program is `unet` itself.
    pub subcommand: Option<&'static str>,
}

/// The runner (a program named `unet` is run as `unet onnx-run`): `configured`, else `UNET_ONNX_RUNNER`, else [`RUNNER`] beside the running
/// binary (or beside its parent directory, as for a test binary in `target/*/deps`), else
/// the running binary itself when it is `unet` (`unet onnx-run`), else [`RUNNER`] on `PATH`.
pub fn find_runner(configured: Option<&Path>) -> Result<Runner, String> {
    // `unet` is the runner through its subcommand, wherever it was found.
    let plain = |binary: PathBuf| Runner {
        subcommand: binary
            .file_name()
            .is_some_and(|n| n == "unet")
            .then_some("onnx-run"),
        binary,
    };
    let given = configured
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("UNET_ONNX_RUNNER").map(PathBuf::from));
    if let Some(p) = given {
        return if p.is_file() {
            Ok(plain(p))
        } else {
            Err(format!("the ONNX runner {}: no such file", p.display()))
        };
    }
    let exe = std::env::current_exe().ok();
    if let Some(p) = exe
        .iter()
        .flat_map(|e| e.ancestors().skip(1).take(2))
        .map(|d| d.join(RUNNER))
        .find(|p| p.is_file())
    {
        return Ok(plain(p));
    }
    if let Some(e) = exe.filter(|e| e.file_name().is_some_and(|n| n == "unet")) {
        return Ok(plain(e));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(RUNNER))
        .find(|p| p.is_file())
        .map(plain)
        .ok_or_else(|| {
            format!(
                "the ONNX runner {RUNNER} was not found beside unet or on PATH \
                 (cargo build --release builds it; or set [runtime] onnx_runner)"
            )
        })
}

/// Runs `model` (ONNX bytes) on `inputs` as job `job_id` of lease `lease`, inside the
/// sandbox `sb`, for at most `wall`. Blocks until the container ends or is stopped.
pub fn run(
    sb: &SandboxConfig,
    job_id: &str,
    lease: u64,
    model: &[u8],
    inputs: &[TensorIn],
    wall: Duration,
) -> OnnxOutcome {
    let runner = match find_runner(sb.onnx_runner.as_deref()) {
        Ok(r) => r,
        Err(e) => return OnnxOutcome::Failed(e),
    };
    let container = format!("unet-{}", &job_id[..job_id.len().min(48)]);
    let in_dir = sb.dir.join("inputs").join(&container);
    let outcome = write_inputs(sb, &in_dir, model, inputs).and_then(|()| {
        let name = runner
            .binary
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        let mut argv = vec![format!("/bin/{name}")];
        argv.extend(runner.subcommand.map(String::from));
        argv.extend([format!("/in/{MODEL}"), format!("/in/{INPUTS}")]);
        let w = Workload {
            container,
            hostname: "job",
            lease,
            argv: &argv,
            env: &[],
            image: None,
            program: Some(Program {
                binary: &runner.binary,
                inputs: &in_dir,
            }),
            memory_bytes: sb.service_memory_mib.saturating_mul(1 << 20),
            file_bytes: FILE_BYTES,
            gpu: None,
        };
        let p = super::exec::prepare(sb, &w)?;
        Ok(p.runtime
            .run_logged(&p.id, &p.bundle, &p.spec, wall, MAX_OUTPUT_BYTES, None))
    });
    let _ = std::fs::remove_dir_all(&in_dir);
    let out = match outcome {
        Ok(out) => out,
        Err(e) => return OnnxOutcome::Failed(e),
    };
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if let Some(stopped) = out.stopped {
        return OnnxOutcome::Stopped(super::exec::result_limit(stopped), said);
    }
    if let Some(e) = out.start_error {
        return OnnxOutcome::Failed(e);
    }
    match (out.exit_code, out.signal) {
        (Some(0), _) => match serde_json::from_slice::<Vec<TensorOut>>(&out.stdout) {
            Ok(outputs) => OnnxOutcome::Outputs(outputs),
            Err(e) => OnnxOutcome::Failed(format!("the runner's outputs: {e}")),
        },
        (Some(code), _) if code == EXIT_REFUSED && !said.is_empty() => OnnxOutcome::Failed(said),
        (code, signal) => OnnxOutcome::Failed(format!(
            "the runner ended with {}: {said}",
            match (code, signal) {
                (_, Some(s)) => format!("signal {s}"),
                (Some(c), _) => format!("status {c}"),
                _ => "no status".into(),
            }
        )),
    }
}

/// Writes the model and the inputs into `dir` (created fresh; 0755 and 0644: the job's
/// unprivileged uid reads them, and only root writes).
fn write_inputs(
    sb: &SandboxConfig,
    dir: &Path,
    model: &[u8],
    inputs: &[TensorIn],
) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    sb.ensure_dir()?;
    let e = |e: std::io::Error| format!("job inputs {}: {e}", dir.display());
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(e)?;
    for d in [dir.parent().unwrap_or(dir), dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).map_err(e)?;
    }
    let json = serde_json::to_vec(inputs).map_err(|x| format!("job inputs: {x}"))?;
    for (name, bytes) in [(MODEL, model), (INPUTS, json.as_slice())] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(e)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).map_err(e)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use unet_renter::job::TensorData;

    /// A sandbox dir (needs root, runc and the runner, which `cargo test --workspace`
    /// builds beside the test binaries).
    fn setup(memory_mib: u64) -> (tempfile::TempDir, SandboxConfig) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sb = SandboxConfig {
            dir: dir.path().join("sandbox"),
            service_memory_mib: memory_mib,
            ..SandboxConfig::for_jobs_dir(&dir.path().join("jobs"))
        };
        (dir, sb)
    }

    fn x(shape: &[usize], data: &[f64]) -> Vec<TensorIn> {
        vec![TensorIn {
            name: None,
            dtype: "f32".into(),
            shape: shape.to_vec(),
            data: data.iter().map(|v| json!(v)).collect(),
        }]
    }

    #[test]
    fn the_runner_refuses_with_the_status_the_miner_reads() {
        assert_eq!(EXIT_REFUSED, unet_onnx::EXIT_REFUSED);
    }

    #[test]
    fn the_example_model_runs_inside_the_sandbox() {
        let (_d, sb) = setup(256);
        let out = run(
            &sb,
            "onnx-ok",
            3,
            &unet_onnx::example_model(),
            &x(&[1, 3], &[1.0, 2.0, 3.0]),
            Duration::from_secs(60),
        );
        let OnnxOutcome::Outputs(out) = out else {
            panic!("{out:?}")
        };
        assert_eq!(out[0].data, TensorData::F32(vec![22.5, 27.0]));
        // The inputs' directory is gone with the job.
        assert!(!sb.dir.join("inputs/unet-onnx-ok").exists());
    }

    #[test]
    fn refusals_come_back_as_the_runners_message() {
        let (_d, sb) = setup(256);
        let out = run(
            &sb,
            "onnx-bad",
            3,
            b"not onnx",
            &x(&[1], &[1.0]),
            Duration::from_secs(60),
        );
        let OnnxOutcome::Failed(e) = out else {
            panic!("{out:?}")
        };
        assert!(e.starts_with("model:"), "{e}");
        let short = x(&[1, 3], &[1.0]);
        let out = run(
            &sb,
            "onnx-short",
            3,
            &unet_onnx::example_model(),
            &short,
            Duration::from_secs(60),
        );
        assert_eq!(
            out,
            OnnxOutcome::Failed("input 0: shape [1, 3] has 3 elements, data has 1".into())
        );
    }

    /// A 300-byte model that writes a 1 GiB tensor. Run in the miner's process, as it was
    /// before, it took the miner's memory; here the job's cgroup stops it.
    #[test]
    fn a_model_that_eats_memory_is_stopped_in_its_own_container() {
        let (_d, sb) = setup(128);
        let model = unet_onnx::heavy_model(1 << 14, false);
        assert!(model.len() < 1024);
        let out = run(
            &sb,
            "onnx-mem",
            3,
            &model,
            &x(&[1], &[1.0]),
            Duration::from_secs(120),
        );
        assert!(
            matches!(out, OnnxOutcome::Stopped(Limit::Memory, _)),
            "{out:?}"
        );
    }

    /// A model of 2 * 8192^3 operations, stopped at its wall time: the container is killed,
    /// no thread of the miner keeps running it.
    #[test]
    fn a_model_past_its_wall_time_is_killed() {
        let (_d, sb) = setup(1536);
        let model = unet_onnx::heavy_model(1 << 13, true);
        let started = std::time::Instant::now();
        let out = run(
            &sb,
            "onnx-slow",
            3,
            &model,
            &x(&[1], &[1.0]),
            Duration::from_millis(500),
        );
        assert!(
            matches!(out, OnnxOutcome::Stopped(Limit::WallTime, _)),
            "{out:?}"
        );
        // Killed, not waited for (the multiplication alone takes minutes).
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    /// `unet onnx-run`, the runner a plain `cargo run --bin unet` has, works the same.
    #[test]
    fn the_unet_binary_is_a_runner_too() {
        let (_d, mut sb) = setup(256);
        let unet = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("unet");
        assert!(
            unet.is_file(),
            "cargo test --workspace builds {}",
            unet.display()
        );
        sb.onnx_runner = Some(unet.clone());
        assert_eq!(
            find_runner(Some(&unet)).unwrap().subcommand,
            Some("onnx-run")
        );
        let out = run(
            &sb,
            "onnx-unet",
            3,
            &unet_onnx::example_model(),
            &x(&[1, 3], &[0.0, 0.0, -1.0]),
            Duration::from_secs(60),
        );
        let OnnxOutcome::Outputs(out) = out else {
            panic!("{out:?}")
        };
        assert_eq!(out[0].data, TensorData::F32(vec![-4.5, -7.0]));
    }

    #[test]
    fn a_missing_runner_is_a_clear_error() {
        let (d, mut sb) = setup(128);
        sb.onnx_runner = Some(d.path().join("nowhere/unet-onnx-run"));
        let out = run(
            &sb,
            "onnx-none",
            3,
            &unet_onnx::example_model(),
            &x(&[1, 3], &[1.0, 2.0, 3.0]),
            Duration::from_secs(5),
        );
        let OnnxOutcome::Failed(e) = out else {
            panic!("{out:?}")
        };
        assert!(e.contains("nowhere/unet-onnx-run: no such file"), "{e}");
    }
}
