//! ONNX inference for renters' jobs, run with `tract-onnx` on the CPU, and the runner binary
//! `unet-onnx-run` that the miner starts inside the job's sandbox.
//!
//! The miner never runs a renter's model in its own process: it writes the model and the
//! inputs into a read-only directory of a fresh runc container (the same sandbox as any
//! job: its own user, pid, mount and network namespaces, cgroup limits on memory, pids and
//! CPU, a wall time after which the whole container is killed) and runs
//! `unet-onnx-run /in/model.onnx /in/inputs.json` there. The runner prints the outputs as
//! one JSON array on stdout, or one line of error on stderr and exits with
//! [`EXIT_REFUSED`]. A model that crashes the runtime, loops or eats memory hurts only its
//! own container.
//!
//! Inputs are given in the model's input order, or by name. Their shapes and types fix the
//! model's input facts, so models with symbolic dimensions run too. Inputs and outputs are
//! bounded by element counts ([`MAX_ELEMENTS`]); a panic inside tract is caught and
//! reported as an error.

use serde_json::Value;
use tract_onnx::prelude::*;

/// Most elements over all inputs (and over all outputs) of one job.
pub const MAX_ELEMENTS: usize = 16 << 20;

/// The runner's exit status for a model or input it refused (the message is on stderr).
pub const EXIT_REFUSED: i32 = 2;

pub use unet_renter::job::{TensorData, TensorIn, TensorOut};

fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d))
}

fn to_tensor(t: &TensorIn, i: usize) -> Result<Tensor, String> {
    let n = elements(&t.shape).ok_or_else(|| format!("input {i}: shape overflows"))?;
    if n != t.data.len() {
        return Err(format!(
            "input {i}: shape {:?} has {n} elements, data has {}",
            t.shape,
            t.data.len()
        ));
    }
    let bad = |j: usize| format!("input {i}: element {j} is not a {}", t.dtype);
    macro_rules! build {
        ($ty:ty, $conv:expr) => {{
            let mut v: Vec<$ty> = Vec::with_capacity(n);
            for (j, x) in t.data.iter().enumerate() {
                v.push($conv(x).ok_or_else(|| bad(j))?);
            }
            Tensor::from_shape::<$ty>(&t.shape, &v).map_err(|e| format!("input {i}: {e}"))
        }};
    }
    match t.dtype.as_str() {
        "f32" => build!(f32, |x: &Value| x.as_f64().map(|f| f as f32)),
        "f64" => build!(f64, |x: &Value| x.as_f64()),
        "i32" => build!(i32, |x: &Value| x
            .as_i64()
            .and_then(|v| i32::try_from(v).ok())),
        "i64" => build!(i64, |x: &Value| x.as_i64()),
        other => Err(format!(
            "input {i}: dtype {other:?} is not one of f32, f64, i32, i64"
        )),
    }
}

fn from_tensor(name: String, t: &Tensor) -> Result<TensorOut, String> {
    let shape = t.shape().to_vec();
    let err = |e: anyhow::Error| format!("output {name}: {e}");
    let (dtype, data) = match t.datum_type() {
        DatumType::F64 => (
            "f64",
            TensorData::F64(
                t.to_plain_array_view::<f64>()
                    .map_err(err)?
                    .iter()
                    .copied()
                    .collect(),
            ),
        ),
        DatumType::I64 => (
            "i64",
            TensorData::I64(
                t.to_plain_array_view::<i64>()
                    .map_err(err)?
                    .iter()
                    .copied()
                    .collect(),
            ),
        ),
        DatumType::I32 => (
            "i32",
            TensorData::I32(
                t.to_plain_array_view::<i32>()
                    .map_err(err)?
                    .iter()
                    .copied()
                    .collect(),
            ),
        ),
        DatumType::Bool => (
            "bool",
            TensorData::Bool(
                t.to_plain_array_view::<bool>()
                    .map_err(err)?
                    .iter()
                    .copied()
                    .collect(),
            ),
        ),
        _ => {
            let c = t.cast_to::<f32>().map_err(err)?;
            (
                "f32",
                TensorData::F32(
                    c.to_plain_array_view::<f32>()
                        .map_err(err)?
                        .iter()
                        .copied()
                        .collect(),
                ),
            )
        }
    };
    Ok(TensorOut {
        name,
        dtype: dtype.into(),
        shape,
        data,
    })
}

fn run_inner(model: &[u8], inputs: &[TensorIn]) -> Result<Vec<TensorOut>, String> {
    let total: usize = inputs
        .iter()
        .map(|t| elements(&t.shape).unwrap_or(usize::MAX))
        .fold(0usize, |a, b| a.saturating_add(b));
    if total > MAX_ELEMENTS {
        return Err(format!("inputs have more than {MAX_ELEMENTS} elements"));
    }
    let mut m = tract_onnx::onnx()
        .model_for_read(&mut &model[..])
        .map_err(|e| format!("model: {e:#}"))?;
    let names: Vec<String> = m
        .input_outlets()
        .map_err(|e| format!("model: {e}"))?
        .iter()
        .map(|o| m.node(o.node).name.clone())
        .collect();
    if names.len() != inputs.len() {
        return Err(format!(
            "the model has {} input(s) ({}), the job gives {}",
            names.len(),
            names.join(", "),
            inputs.len()
        ));
    }
    // Order the given tensors as the model's inputs (by name when every input is named).
    let ordered: Vec<&TensorIn> = if inputs.iter().all(|t| t.name.is_some()) {
        names
            .iter()
            .map(|n| {
                inputs
                    .iter()
                    .find(|t| t.name.as_deref() == Some(n))
                    .ok_or_else(|| format!("no input named {n:?} in the job"))
            })
            .collect::<Result<_, _>>()?
    } else {
        inputs.iter().collect()
    };
    let mut tensors = TVec::new();
    for (i, t) in ordered.iter().enumerate() {
        let tensor = to_tensor(t, i)?;
        m = m
            .with_input_fact(i, InferenceFact::dt_shape_from_tensor(&tensor))
            .map_err(|e| format!("input {i}: {e:#}"))?;
        tensors.push(tensor.into_tvalue());
    }
    let outputs: Vec<String> = m
        .output_outlets()
        .map_err(|e| format!("model: {e}"))?
        .iter()
        .map(|o| m.node(o.node).name.clone())
        .collect();
    let plan = m
        .into_optimized()
        .map_err(|e| format!("model: {e:#}"))?
        .into_runnable()
        .map_err(|e| format!("model: {e:#}"))?;
    let result = plan.run(tensors).map_err(|e| format!("inference: {e:#}"))?;
    let out_total: usize = result.iter().map(|t| t.len()).sum();
    if out_total > MAX_ELEMENTS {
        return Err(format!("outputs have more than {MAX_ELEMENTS} elements"));
    }
    result
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = outputs
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("output{i}"));
            from_tensor(name, t)
        })
        .collect()
}

/// Runs `model` (ONNX protobuf bytes) on `inputs`. Never panics: errors, including panics
/// inside the runtime, come back as `Err`.
pub fn run(model: &[u8], inputs: &[TensorIn]) -> Result<Vec<TensorOut>, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_inner(model, inputs))) {
        Ok(r) => r,
        Err(p) => Err(format!(
            "inference runtime panicked: {}",
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        )),
    }
}

/// What the runner does: reads the model (ONNX protobuf) and the inputs (a JSON array of
/// tensors) from their files, runs it, and gives the outputs as one JSON array.
pub fn run_files(model: &std::path::Path, inputs: &std::path::Path) -> Result<String, String> {
    let model_bytes =
        std::fs::read(model).map_err(|e| format!("model {}: {e}", model.display()))?;
    let input_bytes =
        std::fs::read(inputs).map_err(|e| format!("inputs {}: {e}", inputs.display()))?;
    let inputs: Vec<TensorIn> =
        serde_json::from_slice(&input_bytes).map_err(|e| format!("inputs: {e}"))?;
    let outputs = run(&model_bytes, &inputs)?;
    serde_json::to_string(&outputs).map_err(|e| format!("outputs: {e}"))
}

/// Weights of [`example_model`]: `W` (3 x 2, row-major).
pub const EXAMPLE_W: [f32; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// Bias of [`example_model`]: `B` (2).
pub const EXAMPLE_B: [f32; 2] = [0.5, -1.0];

use tract_onnx::pb;

const FLOAT: i32 = 1;
const INT64: i32 = 7;

fn value(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: FLOAT,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(dimension::Value::DimValue(*d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> pb::NodeProto {
    pb::NodeProto {
        name: output.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

/// An opset-13 model of `nodes` with one f32 input `x` of shape `[1, 3]` or `[1]`.
fn model(
    nodes: Vec<pb::NodeProto>,
    initializer: Vec<pb::TensorProto>,
    x: &[i64],
    y: &[i64],
) -> Vec<u8> {
    use prost::Message as _;
    pb::ModelProto {
        ir_version: 7,
        producer_name: "unet-onnx example".into(),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "example".into(),
            node: nodes,
            initializer,
            input: vec![value("x", x)],
            output: vec![value("y", y)],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A tiny ONNX model (a few hundred bytes) for tests and smoke checks: input `x` f32
/// `[1, 3]`, output `y = MatMul(x, W) + B` f32 `[1, 2]` with [`EXAMPLE_W`] and [`EXAMPLE_B`]
/// as initializers (opset 13). Built with the protobuf types tract itself reads.
pub fn example_model() -> Vec<u8> {
    let init = |name: &str, dims: &[i64], data: &[f32]| pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: FLOAT,
        float_data: data.to_vec(),
        ..Default::default()
    };
    model(
        vec![
            node("MatMul", &["x", "W"], "xw"),
            node("Add", &["xw", "B"], "y"),
        ],
        vec![init("W", &[3, 2], &EXAMPLE_W), init("B", &[2], &EXAMPLE_B)],
        &[1, 3],
        &[1, 2],
    )
}

/// A model of a few hundred bytes that asks for far more than its size, as a hostile renter
/// would send: input `x` f32 `[1]`; `C = ConstantOfShape([n, n], 1.0)` (`4 n^2` bytes) times `x`;
/// with `square`, also `y = MatMul(C, C)` (`2 n^3` floating-point operations). For the
/// sandbox's memory and wall-time tests.
pub fn heavy_model(n: i64, square: bool) -> Vec<u8> {
    let shape = pb::TensorProto {
        name: "shape".into(),
        dims: vec![2],
        data_type: INT64,
        int64_data: vec![n, n],
        ..Default::default()
    };
    // ConstantOfShape's value: a one-element f32 tensor of 1 (the default is f32 zeros, which
    // tract makes f64).
    let mut fill = node("ConstantOfShape", &["shape"], "c");
    fill.attribute.push(pb::AttributeProto {
        name: "value".into(),
        r#type: pb::attribute_proto::AttributeType::Tensor as i32,
        t: Some(pb::TensorProto {
            dims: vec![1],
            data_type: FLOAT,
            float_data: vec![1.0],
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut nodes = vec![
        fill,
        node("Mul", &["c", "x"], if square { "cx" } else { "y" }),
    ];
    if square {
        nodes.push(node("MatMul", &["cx", "cx"], "y"));
    }
    model(nodes, vec![shape], &[1], &[n, n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(name: Option<&str>, data: &[f32]) -> TensorIn {
        TensorIn {
            name: name.map(str::to_string),
            dtype: "f32".into(),
            shape: vec![1, 3],
            data: data.iter().map(|x| json!(x)).collect(),
        }
    }

    #[test]
    fn example_model_computes_the_affine_map() {
        let model = example_model();
        assert!(model.len() < 1024, "{} bytes", model.len());
        let out = run(&model, &[input(Some("x"), &[1.0, 2.0, 3.0])]).unwrap();
        // [1 2 3] . [[1 2] [3 4] [5 6]] = [22 28]; + [0.5 -1] = [22.5 27]
        assert_eq!(
            out,
            vec![TensorOut {
                name: "y".into(),
                dtype: "f32".into(),
                shape: vec![1, 2],
                data: TensorData::F32(vec![22.5, 27.0]),
            }]
        );
        assert_eq!(serde_json::to_string(&out[0].data).unwrap(), "[22.5,27.0]");
        let unnamed = run(&model, &[input(None, &[0.0, 0.0, -1.0])]).unwrap();
        assert_eq!(unnamed[0].data, TensorData::F32(vec![-4.5, -7.0]));
    }

    #[test]
    fn bad_models_and_inputs_are_errors_not_panics() {
        let model = example_model();
        let e = run(b"not a model at all", &[input(None, &[1.0, 2.0, 3.0])]).unwrap_err();
        assert!(e.starts_with("model:"), "{e}");
        let e = run(&model, &[]).unwrap_err();
        assert_eq!(e, "the model has 1 input(s) (x), the job gives 0");
        let mut short = input(None, &[1.0, 2.0]);
        short.shape = vec![1, 3];
        assert_eq!(
            run(&model, &[short]).unwrap_err(),
            "input 0: shape [1, 3] has 3 elements, data has 2"
        );
        let mut wrong = input(None, &[1.0, 2.0, 3.0]);
        wrong.dtype = "u8".into();
        assert!(run(&model, &[wrong]).unwrap_err().contains("dtype \"u8\""));
        let e = run(&model, &[input(Some("nope"), &[1.0, 2.0, 3.0])]).unwrap_err();
        assert_eq!(e, "no input named \"x\" in the job");
        let mut text = input(None, &[1.0, 2.0, 3.0]);
        text.data[1] = json!("two");
        assert_eq!(
            run(&model, &[text]).unwrap_err(),
            "input 0: element 1 is not a f32"
        );
    }
}
