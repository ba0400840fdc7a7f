//! Inference: an ONNX model and input tensors, run with `tract-onnx` on the CPU.
//!
//! Inputs are given in the model's input order, or by name. Their shapes and types fix the
//! model's input facts, so models with symbolic dimensions run too. Limits: the model size
//! is bounded by the request size, inputs and outputs by element counts; the run itself is
//! not interruptible (tract has no cancellation) — the job's wall time is measured and
//! reported, and the runner holds its worker slot until the inference returns, so runaway
//! models cannot pile up. A panic inside tract is caught and reported as a failure.

use serde_json::Value;
use tract_onnx::prelude::*;

/// Most elements over all inputs (and over all outputs) of one job.
pub const MAX_ELEMENTS: usize = 16 << 20;

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

/// Weights of [`example_model`]: `W` (3 x 2, row-major).
pub const EXAMPLE_W: [f32; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// Bias of [`example_model`]: `B` (2).
pub const EXAMPLE_B: [f32; 2] = [0.5, -1.0];

/// A tiny ONNX model (a few hundred bytes) for tests and smoke checks: input `x` f32
/// `[1, 3]`, output `y = MatMul(x, W) + B` f32 `[1, 2]` with [`EXAMPLE_W`] and [`EXAMPLE_B`]
/// as initializers (opset 13). Built with the protobuf types tract itself reads.
pub fn example_model() -> Vec<u8> {
    use prost::Message as _;
    use tract_onnx::pb::{
        tensor_shape_proto::{dimension, Dimension},
        type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
        TensorShapeProto, TypeProto, ValueInfoProto,
    };
    const FLOAT: i32 = 1;
    let value = |name: &str, dims: &[i64]| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
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
    };
    let init = |name: &str, dims: &[i64], data: &[f32]| TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: FLOAT,
        float_data: data.to_vec(),
        ..Default::default()
    };
    let node = |op: &str, inputs: &[&str], output: &str| NodeProto {
        name: output.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    };
    ModelProto {
        ir_version: 7,
        producer_name: "unet-miner example".into(),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            name: "affine".into(),
            node: vec![
                node("MatMul", &["x", "W"], "xw"),
                node("Add", &["xw", "B"], "y"),
            ],
            initializer: vec![init("W", &[3, 2], &EXAMPLE_W), init("B", &[2], &EXAMPLE_B)],
            input: vec![value("x", &[1, 3])],
            output: vec![value("y", &[1, 2])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
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
