//! `unet-onnx-run MODEL INPUTS`: runs an ONNX model (protobuf file) on its inputs (a JSON
//! array of tensors) and prints the outputs as one JSON array on stdout. The miner starts it
//! inside a job's sandbox (see the `unet-onnx` crate); errors are one line on stderr and exit
//! status 2.

use std::process::ExitCode;
use unet_onnx::EXIT_REFUSED;

fn main() -> ExitCode {
    match run() {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_REFUSED as u8)
        }
    }
}

fn run() -> Result<String, String> {
    let args: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    let [model, inputs] = args.as_slice() else {
        return Err("usage: unet-onnx-run MODEL.onnx INPUTS.json".into());
    };
    unet_onnx::run_files(model, inputs)
}
