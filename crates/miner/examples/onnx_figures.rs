//! What running an ONNX job inside the sandbox costs, against the same inference in the
//! calling process (how the miner ran it before), measured in one run (docs/jobs.md):
//!
//! - the example model (`y = xW + B`): `unet_onnx::run` in this process, against
//!   `unet_miner::jobs::onnx::run` (files written, container started with the runner,
//!   outputs read back, container deleted);
//! - a 512 x 512 matrix product (`heavy_model(512, true)`), the same two ways.
//!
//! `cargo build --workspace --examples --locked`, then as root:
//! `$CARGO_TARGET_DIR/debug/examples/onnx_figures [ROUNDS]` (default 10). Needs runc and the
//! runner `unet-onnx-run` beside the example's directory (the workspace build puts it there).

use std::time::{Duration, Instant};
use unet_miner::jobs::{exec::SandboxConfig, onnx};
use unet_onnx::TensorIn;

fn mean(total: Duration, n: u32) -> Duration {
    total / n.max(1)
}

fn main() -> Result<(), String> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| {
            a.parse()
                .map_err(|_| format!("ROUNDS {a:?} is not a number"))
        })
        .transpose()?
        .unwrap_or(10);
    let dir = tempfile::Builder::new()
        .prefix("unet-onnx-figures")
        .tempdir()
        .map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
            .map_err(|e| e.to_string())?;
    }
    let sb = SandboxConfig {
        dir: dir.path().join("sandbox"),
        service_memory_mib: 1024,
        ..SandboxConfig::for_jobs_dir(&dir.path().join("jobs"))
    };
    let x = |shape: Vec<usize>, data: Vec<f64>| {
        vec![TensorIn {
            name: None,
            dtype: "f32".into(),
            shape,
            data: data.into_iter().map(serde_json::Value::from).collect(),
        }]
    };
    let cases = [
        (
            "example model (y = xW + B)",
            unet_onnx::example_model(),
            x(vec![1, 3], vec![1.0, 2.0, 3.0]),
        ),
        (
            "512 x 512 matrix product",
            unet_onnx::heavy_model(512, true),
            x(vec![1], vec![1.0]),
        ),
    ];
    for (name, model, inputs) in &cases {
        // One warm-up each way (the runner's root is built on first use).
        let _ = unet_onnx::run(model, inputs)?;
        let mut jobs = 0u32;
        let job = |i: &mut u32| {
            *i += 1;
            match onnx::run(
                &sb,
                &format!("figure-{i}"),
                1,
                model,
                inputs,
                Duration::from_secs(120),
            ) {
                onnx::OnnxOutcome::Outputs(o) => Ok(o),
                other => Err(format!("{name}: {other:?}")),
            }
        };
        job(&mut jobs)?;
        let (mut here, mut sandboxed) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..n {
            let t = Instant::now();
            let a = unet_onnx::run(model, inputs)?;
            here += t.elapsed();
            let t = Instant::now();
            let b = job(&mut jobs)?;
            sandboxed += t.elapsed();
            if a != b {
                let (x, y) = (&a[0], &b[0]);
                return Err(format!(
                    "{name}: the sandbox's outputs differ: {} {} {:?} / {} {} {:?}",
                    x.name, x.dtype, x.shape, y.name, y.dtype, y.shape
                ));
            }
        }
        let (h, s) = (mean(here, n), mean(sandboxed, n));
        println!(
            "{name}: {s:.1?} in the sandbox vs {h:.1?} in-process ({:.1}x, overhead {:.1?})",
            s.as_secs_f64() / h.as_secs_f64().max(1e-9),
            s.saturating_sub(h)
        );
    }
    Ok(())
}
