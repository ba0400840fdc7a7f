//! Images: import of OCI image-layout archives and the attacks a malicious image makes on
//! the unpacker (path traversal, absolute paths, writes through symlinks, hard links out,
//! device nodes, fifos, setuid bits, tar and gzip bombs, forged blobs). Each malicious image
//! must be refused (or defused) with nothing written outside the image's root.

use serde_json::json;
use std::path::{Path, PathBuf};
use unet_sandbox::image::{
    build::{image_archive, LayerBlob},
    ImageLimits, ImageStore, UnpackLimits,
};

/// A tar entry written byte for byte (the tar crate's builder refuses `..` and absolute
/// names, which is exactly what an attacker's tool does not do).
struct Raw<'a> {
    path: &'a [u8],
    kind: tar::EntryType,
    mode: u32,
    data: &'a [u8],
    link: &'a [u8],
}

fn entry(path: &str, kind: tar::EntryType, data: &str, link: &str) -> Raw<'static> {
    Raw {
        path: Box::leak(path.as_bytes().to_vec().into_boxed_slice()),
        kind,
        mode: if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        },
        data: Box::leak(data.as_bytes().to_vec().into_boxed_slice()),
        link: Box::leak(link.as_bytes().to_vec().into_boxed_slice()),
    }
}

fn file(path: &str, data: &str) -> Raw<'static> {
    entry(path, tar::EntryType::Regular, data, "")
}

fn layer(entries: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..e.path.len()].copy_from_slice(e.path);
            old.linkname = [0; 100];
            old.linkname[..e.link.len()].copy_from_slice(e.link);
        }
        h.set_entry_type(e.kind);
        h.set_mode(e.mode);
        h.set_size(e.data.len() as u64);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

struct Env {
    _dir: tempfile::TempDir,
    base: PathBuf,
    store: ImageStore,
}

fn env_with(limits: ImageLimits) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let store = ImageStore::open(&base.join("store"), limits).unwrap();
    Env {
        _dir: dir,
        base,
        store,
    }
}

fn env() -> Env {
    env_with(ImageLimits::default())
}

impl Env {
    fn import(&self, layers: Vec<Vec<u8>>) -> Result<unet_sandbox::image::Image, String> {
        let blobs: Vec<LayerBlob> = layers
            .into_iter()
            .map(|tar| LayerBlob { tar, gzip: true })
            .collect();
        let img = image_archive(&blobs, json!({"Cmd": ["/bin/sh"]})).unwrap();
        self.store.import_archive(img.archive.as_slice())
    }

    /// Files anywhere under the test directory but outside the store's image roots.
    fn planted(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                let p = e.path();
                if e.file_name().to_string_lossy().contains("pwned") {
                    out.push(p.clone());
                }
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&p, out);
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.base, &mut v);
        v.retain(|p| !p.starts_with(self.base.join("store/images")));
        v
    }
}

#[test]
fn an_image_unpacks_with_its_config_and_layers_applied_in_order() {
    let e = env();
    let l1 = layer(&[
        entry("etc/", tar::EntryType::Directory, "", ""),
        file("etc/motd", "one"),
        file("a/x", "x"),
        file("a/y", "y"),
        file("b/z", "z"),
        entry("bin/sh", tar::EntryType::Symlink, "", "/bin/busybox"),
        file("data1", "hard"),
        entry("data2", tar::EntryType::Link, "", "data1"),
    ]);
    // The upper layer: replace a file, delete b (whiteout), make a opaque but add a/new.
    let l2 = layer(&[
        file("etc/motd", "two"),
        file(".wh.b", ""),
        file("a/new", "new"),
        file("a/.wh..wh..opq", ""),
    ]);
    let blobs = vec![
        LayerBlob {
            tar: l1,
            gzip: true,
        },
        LayerBlob {
            tar: l2,
            gzip: false,
        },
    ];
    let built = image_archive(
        &blobs,
        json!({"Cmd": ["/bin/sh", "-c", "echo hi"], "Env": ["A=1"], "User": "1000:100",
               "ExposedPorts": {"8080/tcp": {}}}),
    )
    .unwrap();
    let img = e.store.import_archive(built.archive.as_slice()).unwrap();
    assert_eq!(img.digest, built.digest);
    let r = &img.rootfs;
    assert_eq!(std::fs::read_to_string(r.join("etc/motd")).unwrap(), "two");
    assert!(!r.join("b").exists(), "whiteout");
    assert!(!r.join("a/x").exists() && !r.join("a/y").exists(), "opaque");
    assert_eq!(std::fs::read_to_string(r.join("a/new")).unwrap(), "new");
    assert_eq!(
        std::fs::read_link(r.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(std::fs::read_to_string(r.join("data2")).unwrap(), "hard");
    for d in ["proc", "dev", "sys", "tmp", "work"] {
        assert!(r.join(d).is_dir(), "{d}");
    }
    assert_eq!(img.config.cmd, ["/bin/sh", "-c", "echo hi"]);
    assert_eq!(img.config.env, ["A=1"]);
    assert_eq!(img.config.uid_gid().unwrap(), (1000, 100));
    assert_eq!(img.config.exposed_ports, [8080]);
    // Cached by digest: the same image again is the same root.
    assert_eq!(e.store.get(&built.digest).unwrap().unwrap(), img);
    assert_eq!(
        e.store.import_archive(built.archive.as_slice()).unwrap(),
        img
    );
}

#[test]
fn dot_dot_and_absolute_paths_are_refused() {
    let e = env();
    for bad in [
        "../pwned",
        "a/../../pwned",
        "./../../../pwned",
        "/tmp/pwned-abs",
    ] {
        let err = e.import(vec![layer(&[file(bad, "x")])]).unwrap_err();
        assert!(err.contains("refused"), "{bad}: {err}");
    }
    // Hard links may not point out either.
    for bad in ["../../outside", "/etc/passwd"] {
        let l = layer(&[entry("pwned", tar::EntryType::Link, "", bad)]);
        let err = e.import(vec![l]).unwrap_err();
        assert!(err.contains("refused"), "{bad}: {err}");
    }
    assert!(!Path::new("/tmp/pwned-abs").exists());
    assert_eq!(e.planted(), Vec::<PathBuf>::new());
}

#[test]
fn writing_through_a_symlink_is_refused_within_a_layer_and_across_layers() {
    let e = env();
    let outside = e.base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let target = outside.display().to_string();
    // Within one layer: an absolute symlink to a host directory, then a file through it.
    let l = layer(&[
        entry("evil", tar::EntryType::Symlink, "", &target),
        file("evil/pwned", "x"),
    ]);
    let err = e.import(vec![l]).unwrap_err();
    assert!(err.contains("symlink"), "{err}");
    // Relative escape, across two layers, and a hard link through a symlinked directory.
    let l1 = layer(&[entry(
        "up",
        tar::EntryType::Symlink,
        "",
        "../../../../../../../..",
    )]);
    let l2 = layer(&[file(&format!("up{target}/pwned2"), "x")]);
    let err = e.import(vec![l1.clone(), l2]).unwrap_err();
    assert!(err.contains("symlink"), "{err}");
    std::fs::write(outside.join("secret"), "s").unwrap();
    let l3 = layer(&[
        entry("hl", tar::EntryType::Symlink, "", &target),
        entry("pwned-link", tar::EntryType::Link, "", "hl/secret"),
    ]);
    let err = e.import(vec![l3]).unwrap_err();
    assert!(err.contains("symlink"), "{err}");
    // A whiteout through a symlink cannot delete a host file either.
    let l4 = layer(&[entry("w", tar::EntryType::Symlink, "", &target)]);
    let l5 = layer(&[file("w/.wh.secret", "")]);
    assert!(e.import(vec![l4, l5]).is_err());
    assert!(outside.join("secret").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    assert_eq!(e.planted(), Vec::<PathBuf>::new());
}

#[test]
fn device_nodes_and_fifos_are_refused() {
    let e = env();
    for (kind, what) in [
        (tar::EntryType::Char, "device"),
        (tar::EntryType::Block, "device"),
        (tar::EntryType::Fifo, "fifo"),
    ] {
        let mut r = entry("dev/mem", kind, "", "");
        r.mode = 0o666;
        let err = e.import(vec![layer(&[r])]).unwrap_err();
        assert!(err.contains(what) && err.contains("refused"), "{err}");
    }
}

#[test]
fn setuid_and_setgid_bits_are_stripped() {
    use std::os::unix::fs::PermissionsExt;
    let e = env();
    let mut suid = file("bin/su", "#!/bin/sh\n");
    suid.mode = 0o4755;
    let mut sgid = file("bin/sg", "x");
    sgid.mode = 0o2750;
    let mut dir = entry("shared/", tar::EntryType::Directory, "", "");
    dir.mode = 0o3777;
    let img = e.import(vec![layer(&[suid, sgid, dir])]).unwrap();
    let mode = |p: &str| {
        std::fs::metadata(img.rootfs.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("bin/su"), 0o755);
    // Others may read and execute what the owner may: the workload runs as "others".
    assert_eq!(mode("bin/sg"), 0o755);
    assert_eq!(mode("shared"), 0o777);
}

#[test]
fn tar_and_gzip_bombs_stop_at_the_caps() {
    let limits = ImageLimits {
        unpack: UnpackLimits {
            max_bytes: 1 << 20,
            max_entries: 100,
        },
        ..ImageLimits::default()
    };
    let e = env_with(limits);
    // 64 MiB of zeros compress to ~64 KiB: refused once past 1 MiB of content.
    let zeros = vec![0u8; 64 << 20];
    let mut h = tar::Header::new_gnu();
    h.set_size(zeros.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, "bomb", zeros.as_slice()).unwrap();
    let err = e.import(vec![b.into_inner().unwrap()]).unwrap_err();
    assert!(err.contains("more than 1048576 bytes"), "{err}");
    // Many small entries.
    let many: Vec<Raw> = (0..200).map(|i| file(&format!("f{i}"), "x")).collect();
    let err = e.import(vec![layer(&many)]).unwrap_err();
    assert!(err.contains("more than 100 entries"), "{err}");
    // A giant PAX extension record is refused before it is read into memory.
    let mut pax = tar::Header::new_ustar();
    pax.set_entry_type(tar::EntryType::XHeader);
    pax.set_size(1 << 30);
    pax.set_mode(0o644);
    pax.set_cksum();
    let mut bytes = pax.as_bytes().to_vec();
    bytes.resize(bytes.len() + (1 << 20), b'a');
    let err = e.import(vec![bytes]).unwrap_err();
    assert!(err.contains("extension record"), "{err}");
}

#[test]
fn forged_blobs_and_broken_layouts_are_refused() {
    let e = env();
    let built = image_archive(
        &[LayerBlob {
            tar: layer(&[file("a", "original")]),
            gzip: false,
        }],
        json!({}),
    )
    .unwrap();
    // Change one byte of the layer blob inside the archive (its name stays its digest).
    let mut forged = built.archive.clone();
    let at = forged.windows(8).position(|w| w == b"original").unwrap();
    forged[at] = b'X';
    let err = e.store.import_archive(forged.as_slice()).unwrap_err();
    assert!(
        err.contains("has digest") && err.contains("refused"),
        "{err}"
    );
    // No oci-layout / no index.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "index.json", &b"{}"[..]).unwrap();
    let err = e
        .store
        .import_archive(b.into_inner().unwrap().as_slice())
        .unwrap_err();
    assert!(err.contains("not an OCI image layout"), "{err}");
    assert!(e.store.import_archive(&b"garbage"[..]).is_err());
}

/// The example image (`unet job example-image`) runs under runc: its `/bin/sh` runs `echo`,
/// its root is read-only. Needs root, runc and busybox-static (scripts/ci-deps).
#[test]
fn the_example_image_runs_in_the_sandbox() {
    use std::os::unix::fs::PermissionsExt;
    let e = env();
    std::fs::set_permissions(&e.base, std::fs::Permissions::from_mode(0o711)).unwrap();
    let bb = unet_sandbox::rootfs::find_busybox()
        .unwrap_or_else(|err| panic!("this test needs busybox-static: {err}"));
    let built = unet_sandbox::image::build::example_image(&bb).unwrap();
    let img = e.store.import_archive(built.archive.as_slice()).unwrap();
    assert_eq!(img.digest, built.digest);
    let rt = unet_sandbox::Runtime::detect(e.base.join("runc-state"))
        .unwrap_or_else(|err| panic!("this test needs runc: {err}"));
    let mut args = img.config.entrypoint.clone();
    args.extend(img.config.cmd.iter().cloned());
    args[2] += "; id -u; echo x > /bin/evil || echo read-only";
    let spec = unet_sandbox::WorkloadSpec {
        rootfs: img.rootfs.clone(),
        args,
        env: img.config.env.clone(),
        cwd: img.config.working_dir.clone().unwrap_or("/".into()),
        uid: 0,
        gid: 0,
        hostname: "job".into(),
        resources: unet_sandbox::Resources::default(),
        ids: unet_sandbox::IdRange::default(),
        binds: vec![],
        cgroup: format!("/unet-test/img{}", std::process::id()),
        devices: vec![],
        netns: None,
    };
    let id = format!("img{}", std::process::id());
    let out = rt.run(
        &id,
        &e.base.join("bundle"),
        &spec,
        std::time::Duration::from_secs(20),
        1 << 20,
    );
    assert_eq!(out.start_error, None, "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the example image\n0\nread-only\n",
        "{out:?}"
    );
    assert_eq!(out.exit_code, Some(0));
}
