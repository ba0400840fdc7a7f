//! The leased NVIDIA GPU inside the container, as a CDI spec gives it: that GPU's
//! `/dev/nvidiaN` (and no other GPU's), `nvidiactl`, `nvidia-uvm`, and the driver libraries.
//!
//! With a CDI spec (`/etc/cdi/*.json`, as `nvidia-ctk cdi generate --format=json` writes),
//! its common edits plus the named device's edits are applied: device nodes, read-only bind
//! mounts of the driver's files, environment. CDI hooks are not run (they would run on the
//! host as root); `LD_LIBRARY_PATH` lists the mounted libraries' directories instead. YAML
//! specs are refused with the command that writes JSON. Without a spec, the device nodes
//! alone are given. Every node must exist as a character device on the host, or the job
//! fails with an error naming it.

use crate::spec::Bind;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A device node given to the container (also allowed in its devices cgroup).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNode {
    /// Path on the host and in the container.
    pub path: PathBuf,
    /// Device major number (195 for NVIDIA GPUs and `nvidiactl`).
    pub major: i64,
    /// Device minor number (the GPU's index; 255 for `nvidiactl`).
    pub minor: i64,
}

/// What a GPU adds to a workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuEdits {
    /// Device nodes to create in the container and allow in its devices cgroup.
    pub devices: Vec<DeviceNode>,
    /// Read-only binds of the driver's libraries and binaries.
    pub binds: Vec<Bind>,
    /// `KEY=VALUE` pairs added to the workload's environment.
    pub env: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Edits {
    #[serde(default)]
    device_nodes: Vec<CdiNode>,
    #[serde(default)]
    mounts: Vec<CdiMount>,
    #[serde(default)]
    env: Vec<String>,
}

#[derive(Deserialize)]
struct CdiNode {
    path: String,
    #[serde(default, rename = "hostPath")]
    host_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CdiMount {
    host_path: String,
    container_path: String,
}

#[derive(Deserialize)]
struct CdiDevice {
    name: String,
    #[serde(default, rename = "containerEdits")]
    edits: Edits,
}

#[derive(Deserialize)]
struct CdiSpec {
    kind: String,
    #[serde(default)]
    devices: Vec<CdiDevice>,
    #[serde(default, rename = "containerEdits")]
    edits: Edits,
}

/// The character device at `path` on the host.
pub fn char_device(path: &Path) -> Result<DeviceNode, String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(path).map_err(|e| {
        format!(
            "{}: {e}: is the NVIDIA driver loaded (nvidia-smi; modprobe nvidia-uvm)?",
            path.display()
        )
    })?;
    if !m.file_type().is_char_device() {
        return Err(format!("{} is not a character device", path.display()));
    }
    let rdev = m.rdev();
    Ok(DeviceNode {
        path: path.to_path_buf(),
        major: libc::major(rdev) as i64,
        minor: libc::minor(rdev) as i64,
    })
}

/// GPU `index` (`/dev/nvidia<index>`) with `nvidiactl` and `nvidia-uvm` under `dev`
/// (`/dev` on a real host), no CDI spec.
pub fn nvidia_nodes(index: u32, dev: &Path) -> Result<GpuEdits, String> {
    let mut devices = Vec::new();
    for name in [
        format!("nvidia{index}"),
        "nvidiactl".into(),
        "nvidia-uvm".into(),
    ] {
        devices.push(char_device(&dev.join(name))?);
    }
    Ok(GpuEdits {
        devices,
        ..Default::default()
    })
}

/// The edits of CDI device `name` (e.g. `0` or a GPU UUID) in the JSON spec `text` of kind
/// `nvidia.com/gpu`. `resolve` maps a spec path to the host path to stat (identity on a real
/// host; tests point it at fake device nodes).
pub fn from_cdi(
    text: &str,
    name: &str,
    resolve: impl Fn(&str) -> PathBuf,
) -> Result<GpuEdits, String> {
    let t = text.trim_start();
    if !t.starts_with('{') {
        return Err("the CDI spec is not JSON: write one with \
             `nvidia-ctk cdi generate --format=json --output=/etc/cdi/nvidia.json`"
            .into());
    }
    let spec: CdiSpec = serde_json::from_str(t).map_err(|e| format!("CDI spec: {e}"))?;
    if spec.kind != "nvidia.com/gpu" {
        return Err(format!(
            "CDI spec of kind {:?}, not nvidia.com/gpu",
            spec.kind
        ));
    }
    let dev = spec
        .devices
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| format!("the CDI spec has no device {name:?}"))?;
    let mut out = GpuEdits::default();
    let mut lib_dirs: Vec<String> = Vec::new();
    for edits in [&spec.edits, &dev.edits] {
        for n in &edits.device_nodes {
            let host = n.host_path.as_deref().unwrap_or(&n.path);
            let mut d = char_device(&resolve(host))?;
            d.path = PathBuf::from(&n.path);
            if !out.devices.iter().any(|x| x.path == d.path) {
                out.devices.push(d);
            }
        }
        for m in &edits.mounts {
            if !m.container_path.starts_with('/') || m.container_path.contains("..") {
                return Err(format!("CDI mount to {:?} refused", m.container_path));
            }
            if m.container_path.contains(".so") {
                if let Some(dir) = Path::new(&m.container_path).parent() {
                    let dir = dir.display().to_string();
                    if !lib_dirs.contains(&dir) {
                        lib_dirs.push(dir);
                    }
                }
            }
            out.binds.push(Bind {
                host: resolve(&m.host_path),
                container: PathBuf::from(&m.container_path),
                read_only: true,
            });
        }
        out.env.extend(edits.env.iter().cloned());
    }
    if !lib_dirs.is_empty() {
        out.env
            .push(format!("LD_LIBRARY_PATH={}", lib_dirs.join(":")));
    }
    Ok(out)
}

/// The edits of host GPU `index` for a workload: from the first JSON CDI spec under
/// `cdi_dirs` (its device named `index`, plus the spec's common edits), else the device
/// nodes `nvidia<index>`, `nvidiactl` and `nvidia-uvm` alone. Nodes are looked up under
/// `dev` (`/dev` on a real host; tests point it elsewhere) and appear in the container as
/// `/dev/<name>`. A missing node is an error naming it.
pub fn gpu_edits(index: u32, dev: &Path, cdi_dirs: &[PathBuf]) -> Result<GpuEdits, String> {
    let dirs: Vec<&Path> = cdi_dirs.iter().map(PathBuf::as_path).collect();
    let resolve = |p: &str| match p.strip_prefix("/dev/") {
        Some(name) => dev.join(name),
        None => PathBuf::from(p),
    };
    let mut edits = match find_cdi_spec(&dirs)? {
        Some(text) => from_cdi(&text, &index.to_string(), resolve)?,
        None => nvidia_nodes(index, dev)?,
    };
    for d in &mut edits.devices {
        if let Some(name) = d.path.file_name() {
            d.path = Path::new("/dev").join(name);
        }
    }
    Ok(edits)
}

/// The first `*.json` CDI spec of kind `nvidia.com/gpu` under `dir` (`/etc/cdi`, then
/// `/var/run/cdi` on a real host), if any; a YAML spec there is named in the error.
pub fn find_cdi_spec(dirs: &[&Path]) -> Result<Option<String>, String> {
    let mut yaml = None;
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "json" {
                let t = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                if t.contains("\"nvidia.com/gpu\"") {
                    return Ok(Some(t));
                }
            } else if ext == "yaml" || ext == "yml" {
                yaml = Some(p);
            }
        }
    }
    match yaml {
        Some(p) => Err(format!(
            "{} is YAML; the miner reads JSON CDI specs: \
             nvidia-ctk cdi generate --format=json --output=/etc/cdi/nvidia.json",
            p.display()
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `/dev` with NVIDIA's character devices (major 195 for GPUs and nvidiactl,
    /// 511 for nvidia-uvm here). Needs root (mknod).
    fn fake_dev() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, major, minor) in [
            ("nvidia0", 195, 0),
            ("nvidia1", 195, 1),
            ("nvidiactl", 195, 255),
            ("nvidia-uvm", 511, 0),
        ] {
            let p = std::ffi::CString::new(d.path().join(name).to_str().unwrap()).unwrap();
            // SAFETY: `p` is a NUL-terminated path that outlives the call; mknod only creates a
            // device node inside our own temporary directory.
            #[allow(unsafe_code)]
            let r = unsafe {
                libc::mknod(
                    p.as_ptr(),
                    libc::S_IFCHR | 0o600,
                    libc::makedev(major, minor),
                )
            };
            assert_eq!(
                r,
                0,
                "mknod needs root: {}",
                std::io::Error::last_os_error()
            );
        }
        d
    }

    fn spec_with(devices: Vec<DeviceNode>) -> serde_json::Value {
        let w = crate::WorkloadSpec {
            rootfs: "/r".into(),
            args: vec!["/bin/sh".into()],
            env: vec![],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            hostname: "job".into(),
            resources: crate::Resources::default(),
            ids: crate::IdRange::default(),
            binds: vec![],
            cgroup: "/unet/x".into(),
            devices,
            netns: None,
        };
        serde_json::to_value(w.build().unwrap()).unwrap()
    }

    #[test]
    fn the_leased_gpu_and_no_other_is_in_the_runtime_spec() {
        let dev = fake_dev();
        let g = nvidia_nodes(0, dev.path()).unwrap();
        let v = spec_with(g.devices);
        let nodes: Vec<(String, i64, i64)> = v["linux"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    Path::new(d["path"].as_str().unwrap())
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                    d["major"].as_i64().unwrap(),
                    d["minor"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            nodes,
            [
                ("nvidia0".to_string(), 195, 0),
                ("nvidiactl".to_string(), 195, 255),
                ("nvidia-uvm".to_string(), 511, 0)
            ]
        );
        // The devices cgroup denies everything, then allows exactly those three.
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(rules[0]["allow"], false);
        let allowed: Vec<(i64, i64)> = rules[1..]
            .iter()
            .map(|r| {
                assert_eq!(r["allow"], true);
                assert_eq!(r["type"], "c");
                (r["major"].as_i64().unwrap(), r["minor"].as_i64().unwrap())
            })
            .collect();
        assert_eq!(allowed, [(195, 0), (195, 255), (511, 0)]);
        // Without a GPU: no device at all, deny-all cgroup rule only.
        let v = spec_with(vec![]);
        assert!(v["linux"]["devices"]
            .as_array()
            .is_none_or(|a| a.is_empty()));
        assert_eq!(
            v["linux"]["resources"]["devices"].as_array().unwrap().len(),
            1
        );
    }

    #[test]
    fn a_missing_device_is_a_clear_error() {
        let dev = fake_dev();
        std::fs::remove_file(dev.path().join("nvidia-uvm")).unwrap();
        let err = nvidia_nodes(0, dev.path()).unwrap_err();
        assert!(
            err.contains("nvidia-uvm") && err.contains("driver loaded"),
            "{err}"
        );
        let err = nvidia_nodes(3, dev.path()).unwrap_err();
        assert!(err.contains("nvidia3"), "{err}");
        // A regular file posing as a device.
        std::fs::write(dev.path().join("nvidia-uvm"), "x").unwrap();
        let err = nvidia_nodes(0, dev.path()).unwrap_err();
        assert!(err.contains("not a character device"), "{err}");
    }

    /// A spec shaped as `nvidia-ctk cdi generate --format=json` writes it (trimmed).
    const CDI: &str = r#"{
      "cdiVersion": "0.5.0",
      "kind": "nvidia.com/gpu",
      "devices": [
        {"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}]}},
        {"name": "1", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia1"}]}},
        {"name": "all", "containerEdits": {"deviceNodes": [{"path": "/dev/nvidia0"}, {"path": "/dev/nvidia1"}]}}
      ],
      "containerEdits": {
        "env": ["NVIDIA_VISIBLE_DEVICES=void"],
        "deviceNodes": [{"path": "/dev/nvidiactl"}, {"path": "/dev/nvidia-uvm"}],
        "hooks": [{"hookName": "createContainer", "path": "/usr/bin/nvidia-ctk",
                   "args": ["nvidia-ctk", "hook", "update-ldcache"]}],
        "mounts": [
          {"hostPath": "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15",
           "containerPath": "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15",
           "options": ["ro", "nosuid", "nodev", "bind"]},
          {"hostPath": "/usr/bin/nvidia-smi", "containerPath": "/usr/bin/nvidia-smi",
           "options": ["ro", "nosuid", "nodev", "bind"]}
        ]
      }
    }"#;

    #[test]
    fn a_cdi_spec_gives_the_named_gpu_its_nodes_libraries_and_env() {
        let dev = fake_dev();
        let root = dev.path().to_path_buf();
        let resolve = |p: &str| match p.strip_prefix("/dev/") {
            Some(n) => root.join(n),
            None => PathBuf::from(p),
        };
        let g = from_cdi(CDI, "1", resolve).unwrap();
        let paths: Vec<&str> = g.devices.iter().map(|d| d.path.to_str().unwrap()).collect();
        assert_eq!(paths, ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia1"]);
        assert_eq!((g.devices[2].major, g.devices[2].minor), (195, 1));
        assert!(g.binds.iter().all(|b| b.read_only));
        assert_eq!(g.binds.len(), 2);
        assert!(g
            .env
            .contains(&"LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu".to_string()));
        assert!(g.env.contains(&"NVIDIA_VISIBLE_DEVICES=void".to_string()));
        // Unknown device, wrong kind, YAML, a mount escaping with ..: errors.
        let resolve2 = |p: &str| PathBuf::from(p);
        assert!(from_cdi(CDI, "7", resolve2)
            .unwrap_err()
            .contains("no device \"7\""));
        let other = CDI.replace("nvidia.com/gpu", "vendor.com/fpga");
        assert!(from_cdi(&other, "0", resolve2).is_err());
        let yaml = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n";
        assert!(from_cdi(yaml, "0", resolve2)
            .unwrap_err()
            .contains("--format=json"));
        let evil = CDI.replace(
            "\"containerPath\": \"/usr/bin/nvidia-smi\"",
            "\"containerPath\": \"/usr/../etc/passwd\"",
        );
        let root2 = dev.path().to_path_buf();
        let resolve3 = move |p: &str| match p.strip_prefix("/dev/") {
            Some(n) => root2.join(n),
            None => PathBuf::from(p),
        };
        assert!(from_cdi(&evil, "0", resolve3)
            .unwrap_err()
            .contains("refused"));
        // Spec discovery: a YAML spec is named with the fix; a JSON one is read.
        let cdi_dir = tempfile::tempdir().unwrap();
        std::fs::write(cdi_dir.path().join("nvidia.yaml"), yaml).unwrap();
        let err = find_cdi_spec(&[cdi_dir.path()]).unwrap_err();
        assert!(
            err.contains("nvidia.yaml") && err.contains("--format=json"),
            "{err}"
        );
        std::fs::write(cdi_dir.path().join("nvidia.json"), CDI).unwrap();
        assert_eq!(
            find_cdi_spec(&[cdi_dir.path()]).unwrap().as_deref(),
            Some(CDI)
        );
        assert_eq!(find_cdi_spec(&[Path::new("/nonexistent")]).unwrap(), None);
    }
}
