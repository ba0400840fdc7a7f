//! The runner binary as the miner uses it: files in, JSON out, refusals on stderr.

use std::process::Command;
use unet_onnx::{example_model, TensorData, TensorOut, EXIT_REFUSED};

fn runner(model: &[u8], inputs: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), model).unwrap();
    std::fs::write(dir.path().join("i.json"), inputs).unwrap();
    Command::new(env!("CARGO_BIN_EXE_unet-onnx-run"))
        .arg(dir.path().join("m.onnx"))
        .arg(dir.path().join("i.json"))
        .output()
        .unwrap()
}

#[test]
fn prints_the_outputs_of_the_example_model() {
    let out = runner(
        &example_model(),
        r#"[{"name":"x","dtype":"f32","shape":[1,3],"data":[1,2,3]}]"#,
    );
    assert!(out.status.success(), "{out:?}");
    let outputs: Vec<TensorOut> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        outputs,
        vec![TensorOut {
            name: "y".into(),
            dtype: "f32".into(),
            shape: vec![1, 2],
            data: TensorData::F32(vec![22.5, 27.0]),
        }]
    );
}

#[test]
fn hostile_models_and_inputs_are_refused_with_a_message_not_a_panic() {
    for (model, inputs, says) in [
        (b"not a model".to_vec(), "[]", "model:"),
        (example_model(), "{", "inputs:"),
        (
            example_model(),
            r#"[{"dtype":"f32","shape":[1,3],"data":[1,2]}]"#,
            "has 3 elements, data has 2",
        ),
        (
            example_model(),
            r#"[{"dtype":"f32","shape":[4294967296,4294967296],"data":[]}]"#,
            "more than",
        ),
    ] {
        let out = runner(&model, inputs);
        assert_eq!(out.status.code(), Some(EXIT_REFUSED), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{says:?} not in {err:?}");
        assert!(out.stdout.is_empty());
    }
}
