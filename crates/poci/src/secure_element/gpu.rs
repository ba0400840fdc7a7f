//! An emulated NVIDIA GPU for devnets and tests: a devnet CA shaped like NVIDIA's device
//! identity PKI ([`DevnetNvidiaCa`]) and a GPU whose security engine answers SPDM 1.1
//! GET_MEASUREMENTS with a signed report ([`EmulatedGpu`]), for any GPU entry of the
//! architecture table ([`crate::nvidia::arch::ARCHITECTURES`]).
//!
//! The evidence takes exactly the path real NVIDIA evidence takes ([`crate::nvidia::verify`]:
//! report signature, nonce, chain, architecture names, opaque layout, the architecture's FWID
//! extension, BROM identity), so a devnet exercises registration and fresh-attestation liveness
//! of a Blackwell or Hopper chip without the hardware. Only the anchor differs: the root's
//! subject carries [`DEVNET_MARKER`], so every trust store treats it as devnet-only and a
//! production chain never accepts an emulated GPU.
//!
//! Chain (leaf first), as NVIDIA's: `<chip> A01 GSP FMC LF` (firmware alias key, FWID
//! extension) -> `<chip> A01 GSP BROM` (per-GPU DeviceID key; the chip id) -> `<provisioner
//! CA prefix> DEVNET` -> `<identity CA>` -> devnet root. All keys are P-384, derived from seeds.

use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::Encode;
use p384::ecdsa::signature::Signer;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::Extension;
use x509_cert::name::Name;

use super::ca::{cert_err, make_name, serial_for, validity, Profile, OID_O};
use super::ca::{DEVNET_NOT_AFTER, DEVNET_NOT_BEFORE};
use super::SeError;
use crate::chain::{OID_CN, OID_SERIAL_NUMBER};
use crate::crypto::sha256;
use crate::evidence::{Evidence, NvidiaEvidence};
use crate::nvidia::arch::{Architecture, DeviceClass, FwidForm, VbiosEncoding, ARCHITECTURES};
use crate::nvidia::fields::{
    OPAQUE_CHIP_SKU, OPAQUE_DRIVER_VERSION, OPAQUE_FWID, OPAQUE_PROJECT, OPAQUE_PROJECT_SKU,
    OPAQUE_VBIOS_VERSION,
};
use crate::nvidia::spdm::{GET_MEASUREMENTS, MEASUREMENTS, SPDM_VERSION_1_1};
use crate::trust::{TrustStore, DEVNET_MARKER};
use crate::types::{Curve, DevicePublicKey, EvidenceKind};

/// DER of the SHA-384 algorithm OID (2.16.840.1.101.3.4.2.2).
const SHA384_OID_DER: &[u8] = &[
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
];
/// Measurement blocks in an emulated report.
const BLOCKS: u8 = 16;

/// Signed board facts of an emulated GPU (what PROJECT / PROJECT_SKU / CHIP_SKU say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// PROJECT, e.g. `G525`
    pub project: &'static str,
    /// PROJECT_SKU, e.g. `0220`
    pub project_sku: &'static str,
    /// CHIP_SKU, e.g. `886`
    pub chip_sku: &'static str,
}

/// The board of NVIDIA's public sample of this architecture (so an emulated chip's
/// `model_detail` looks like a real one).
fn sample_board(arch: &Architecture) -> Board {
    match arch.chip {
        "GB100" => Board {
            project: "G525",
            project_sku: "0220",
            chip_sku: "886",
        },
        _ => Board {
            project: "G520",
            project_sku: "0200",
            chip_sku: "885",
        },
    }
}

/// The BROM key, firmware alias key and FWID of an emulated GPU, from its device secret.
fn gpu_keys(
    arch: &Architecture,
    device_secret: &[u8; 16],
) -> (p384::ecdsa::SigningKey, p384::ecdsa::SigningKey, [u8; 48]) {
    let brom_key = derive_p384(device_secret, "brom");
    let fwid: [u8; 48] = {
        let a = sha256(&[b"fwid".as_slice(), arch.chip.as_bytes()].concat());
        let b = sha256(&a);
        let mut out = [0u8; 48];
        out[..32].copy_from_slice(&a);
        out[32..].copy_from_slice(&b[..16]);
        out
    };
    let leaf_key = derive_p384(&[&device_secret[..], &fwid].concat(), "fmc alias");
    (brom_key, leaf_key, fwid)
}

fn derive_p384(seed: &[u8], label: &str) -> p384::ecdsa::SigningKey {
    for counter in 0u32.. {
        let mut bytes = sha256(&[seed, label.as_bytes(), &counter.to_be_bytes()].concat()).to_vec();
        bytes.extend_from_slice(&sha256(&[label.as_bytes(), seed].concat())[..16]);
        if let Ok(key) = p384::ecdsa::SigningKey::from_slice(&bytes) {
            return key;
        }
    }
    unreachable!("a valid scalar is found with overwhelming probability")
}

/// DER TLV with a definite length.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
    out
}

fn sign_p384(
    profile: Profile,
    serial_seed: &[u8],
    spki: SubjectPublicKeyInfoOwned,
    signer: &p384::ecdsa::SigningKey,
    extra: Option<Extension>,
) -> Result<Vec<u8>, SeError> {
    let mut builder = CertificateBuilder::new(
        profile,
        serial_for(serial_seed)?,
        validity(DEVNET_NOT_BEFORE, DEVNET_NOT_AFTER)?,
        spki,
    )
    .map_err(cert_err)?;
    if let Some(ext) = extra {
        builder.add_extension(ext).map_err(cert_err)?;
    }
    builder
        .build::<_, p384::ecdsa::DerSignature>(signer)
        .map_err(cert_err)?
        .to_der()
        .map_err(cert_err)
}

fn spki_of(key: &p384::ecdsa::SigningKey) -> Result<SubjectPublicKeyInfoOwned, SeError> {
    SubjectPublicKeyInfoOwned::from_key(key.verifying_key()).map_err(cert_err)
}

/// A devnet CA shaped like NVIDIA's device identity PKI, for one GPU architecture.
pub struct DevnetNvidiaCa {
    arch: &'static Architecture,
    root_der: Vec<u8>,
    identity_der: Vec<u8>,
    ica_key: p384::ecdsa::SigningKey,
    ica_der: Vec<u8>,
    ica_name: Name,
}

impl std::fmt::Debug for DevnetNvidiaCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevnetNvidiaCa")
            .field("architecture", &self.arch.name)
            .field("root_fingerprint", &hex::encode(sha256(&self.root_der)))
            .finish()
    }
}

impl DevnetNvidiaCa {
    /// The CA for the GPU architecture named `architecture` (e.g. `"Blackwell"`), from a seed.
    /// Same seed, same certificates.
    pub fn from_seed(seed: &[u8], architecture: &str) -> Result<Self, SeError> {
        let arch = ARCHITECTURES
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(architecture) && a.class == DeviceClass::Gpu)
            .ok_or_else(|| {
                SeError::Certificate(format!("no GPU architecture named {architecture:?}"))
            })?;
        let seed = [seed, arch.chip.as_bytes()].concat();
        let tag = hex::encode(&sha256(&seed)[..4]);
        let org = format!("{DEVNET_MARKER} (NOT FOR PRODUCTION)");
        let root_key = derive_p384(&seed, "root");
        let identity_key = derive_p384(&seed, "identity");
        let ica_key = derive_p384(&seed, "provisioner");
        let root_name = make_name(&[
            (
                OID_CN,
                &format!("UtilityNet Devnet NVIDIA-shaped Root {tag}"),
            ),
            (OID_O, &org),
        ])?;
        let identity_name = make_name(&[(OID_CN, arch.identity_ca), (OID_O, &org)])?;
        let ica_name = make_name(&[
            (OID_CN, &format!("{} DEVNET", arch.provisioner_ca_prefix)),
            (OID_O, &org),
        ])?;
        // A CA certificate for `key` named `subject`, signed by `issuer_key` (`label` seeds
        // its serial).
        let issue_ca = |label: &[u8],
                        subject: &Name,
                        issuer: Option<&Name>,
                        key: &p384::ecdsa::SigningKey,
                        issuer_key: &p384::ecdsa::SigningKey| {
            let profile = Profile {
                subject: subject.clone(),
                issuer: issuer.cloned(),
                ca: Some(None),
            };
            sign_p384(
                profile,
                &[&seed[..], label].concat(),
                spki_of(key)?,
                issuer_key,
                None,
            )
        };
        let root_der = issue_ca(b"root", &root_name, None, &root_key, &root_key)?;
        let identity_der = issue_ca(
            b"identity",
            &identity_name,
            Some(&root_name),
            &identity_key,
            &root_key,
        )?;
        let ica_der = issue_ca(
            b"provisioner",
            &ica_name,
            Some(&identity_name),
            &ica_key,
            &identity_key,
        )?;
        Ok(Self {
            arch,
            root_der,
            identity_der,
            ica_key,
            ica_der,
            ica_name,
        })
    }

    /// The architecture this CA certifies GPUs of.
    pub fn architecture(&self) -> &'static Architecture {
        self.arch
    }

    /// DER of the self-signed (devnet-only) root.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// Pin the root (devnet-only) for [`EvidenceKind::NvidiaSpdm`].
    pub fn pin_into(&self, trust: &mut TrustStore) {
        trust
            .add_root(EvidenceKind::NvidiaSpdm, &self.root_der, true)
            .expect("the devnet root is well formed");
    }

    /// A devnet trust store (devnet roots allowed) with this CA pinned.
    pub fn trust_store(&self) -> TrustStore {
        let mut trust = TrustStore::devnet();
        self.pin_into(&mut trust);
        trust
    }

    /// Manufacture a GPU from its 128-bit device secret: a BROM (DeviceID) key and certificate,
    /// and a firmware alias key certified by it for the firmware `fwid` derives from the secret.
    pub fn manufacture(&self, device_secret: [u8; 16]) -> Result<EmulatedGpu, SeError> {
        let arch = self.arch;
        let (brom_key, leaf_key, fwid) = gpu_keys(arch, &device_secret);
        let brom_point = brom_key.verifying_key().to_sec1_point(false);
        let serial = hex::encode_upper(&sha256(brom_point.as_bytes())[..9]);
        let brom_cn = format!("{} A01 {} BROM", arch.chip, arch.engine);
        let brom_name = make_name(&[
            (OID_SERIAL_NUMBER, &serial),
            (OID_O, "UtilityNet Devnet GPU"),
            (OID_CN, &brom_cn),
        ])?;
        let brom_der = sign_p384(
            Profile {
                subject: brom_name.clone(),
                issuer: Some(self.ica_name.clone()),
                ca: Some(Some(0)),
            },
            brom_point.as_bytes(),
            spki_of(&brom_key)?,
            &self.ica_key,
            None,
        )?;
        let leaf_name = make_name(&[
            (OID_O, "UtilityNet Devnet GPU"),
            (OID_CN, &format!("{} A01 {} FMC LF", arch.chip, arch.engine)),
        ])?;
        let fwid_entry = tlv(
            0x30,
            &[
                SHA384_OID_DER,
                &OctetString::new(fwid.as_slice())
                    .and_then(|o| o.to_der())
                    .map_err(cert_err)?,
            ]
            .concat(),
        );
        let (oid, value): (ObjectIdentifier, Vec<u8>) = match arch.fwid_form {
            FwidForm::CompositeIdentifier => {
                let identity = spki_of(&brom_key)?.to_der().map_err(cert_err)?;
                let body = [&[0x02, 0x01, 0x01][..], &identity, &fwid_entry].concat();
                (arch.fwid_extension, tlv(0x30, &body))
            }
            FwidForm::TcbInfoFirstFwid => {
                let body = [
                    tlv(0x80, b"NVIDIA"),
                    tlv(
                        0x81,
                        format!("{} A01 {}", arch.chip, arch.engine).as_bytes(),
                    ),
                    tlv(0xA6, &fwid_entry),
                ]
                .concat();
                (arch.fwid_extension, tlv(0x30, &body))
            }
        };
        let extension = Extension {
            extn_id: oid,
            critical: false,
            extn_value: OctetString::new(value).map_err(cert_err)?,
        };
        let leaf_der = sign_p384(
            Profile {
                subject: leaf_name,
                issuer: Some(brom_name),
                ca: None,
            },
            &[brom_point.as_bytes(), b"leaf"].concat(),
            spki_of(&leaf_key)?,
            &brom_key,
            Some(extension),
        )?;
        Ok(EmulatedGpu {
            arch,
            secret: device_secret,
            brom_public: DevicePublicKey {
                curve: Curve::P384,
                sec1: brom_point.as_bytes().to_vec(),
            },
            leaf_key,
            fwid,
            board: sample_board(arch),
            serial,
            chain: vec![
                leaf_der,
                brom_der,
                self.ica_der.clone(),
                self.identity_der.clone(),
            ],
        })
    }
}

/// One emulated GPU: its certificate chain and a security engine that signs attestation reports.
pub struct EmulatedGpu {
    arch: &'static Architecture,
    secret: [u8; 16],
    brom_public: DevicePublicKey,
    leaf_key: p384::ecdsa::SigningKey,
    fwid: [u8; 48],
    board: Board,
    serial: String,
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for EmulatedGpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatedGpu")
            .field("architecture", &self.arch.name)
            .field("chip_id", &hex::encode(self.chip_id()))
            .finish_non_exhaustive()
    }
}

impl EmulatedGpu {
    /// Reopen a GPU made by [`DevnetNvidiaCa::manufacture`] from its architecture name, device
    /// secret and chain (leaf first): the keys are derived again from the secret and must be the
    /// keys the chain certifies (leaf = firmware alias key, second = BROM key).
    pub fn open(
        architecture: &str,
        device_secret: [u8; 16],
        chain: Vec<Vec<u8>>,
    ) -> Result<Self, SeError> {
        let arch = ARCHITECTURES
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(architecture) && a.class == DeviceClass::Gpu)
            .ok_or_else(|| {
                SeError::Certificate(format!("no GPU architecture named {architecture:?}"))
            })?;
        let (brom_key, leaf_key, fwid) = gpu_keys(arch, &device_secret);
        let key_of = |der: Option<&Vec<u8>>| -> Result<Vec<u8>, SeError> {
            let der = der.ok_or_else(|| SeError::Certificate("chain too short".into()))?;
            Ok(crate::chain::ParsedCert::parse(0, der)
                .map_err(cert_err)?
                .key
                .sec1()
                .to_vec())
        };
        let brom_point = brom_key.verifying_key().to_sec1_point(false);
        if key_of(chain.first())? != leaf_key.verifying_key().to_sec1_point(false).as_bytes()
            || key_of(chain.get(1))? != brom_point.as_bytes()
        {
            return Err(SeError::Certificate(
                "the chain does not certify this device secret's keys".into(),
            ));
        }
        Ok(Self {
            arch,
            secret: device_secret,
            brom_public: DevicePublicKey {
                curve: Curve::P384,
                sec1: brom_point.as_bytes().to_vec(),
            },
            leaf_key,
            fwid,
            board: sample_board(arch),
            serial: hex::encode_upper(&sha256(brom_point.as_bytes())[..9]),
            chain,
        })
    }

    /// The architecture entry's name (e.g. `Blackwell`).
    pub fn architecture(&self) -> &'static str {
        self.arch.name
    }

    /// The chip id the chain computes: from the BROM key, for [`EvidenceKind::NvidiaSpdm`].
    pub fn chip_id(&self) -> [u8; 32] {
        self.brom_public.chip_id(EvidenceKind::NvidiaSpdm)
    }

    /// The BROM (DeviceID) serial number.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The architecture's default model (e.g. `B200`).
    pub fn model(&self) -> &'static str {
        self.arch.default_model
    }

    /// The certificate chain, leaf first (root left out).
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// A signed SPDM 1.1 GET_MEASUREMENTS request || MEASUREMENTS response over `nonce`, with
    /// the architecture's opaque fields.
    pub fn attest(&self, nonce: &[u8; 32]) -> Vec<u8> {
        let mut r = vec![SPDM_VERSION_1_1, GET_MEASUREMENTS, 0x01, 0xFF];
        r.extend_from_slice(nonce);
        r.push(0); // slot 0
        r.extend_from_slice(&[SPDM_VERSION_1_1, MEASUREMENTS, 0x00, 0x00, BLOCKS]);
        let mut record = Vec::new();
        for index in 1..=BLOCKS {
            let digest = sha256(&[&self.fwid[..], &[index]].concat());
            let mut value = digest.to_vec();
            value.extend_from_slice(&digest[..16]);
            record.extend_from_slice(&[index, 1]);
            record.extend_from_slice(&(3 + value.len() as u16).to_le_bytes());
            record.push(1); // DMTF: immutable ROM / firmware digest
            record.extend_from_slice(&(value.len() as u16).to_le_bytes());
            record.extend_from_slice(&value);
        }
        r.extend_from_slice(&(record.len() as u32).to_le_bytes()[..3]);
        r.extend_from_slice(&record);
        r.extend_from_slice(&sha256(&[&self.secret[..], nonce].concat()));
        let padded = |text: &str, len: usize| {
            let mut v = text.as_bytes().to_vec();
            v.resize(len, 0);
            v
        };
        let vbios = match self.arch.vbios {
            VbiosEncoding::Binary => vec![0x00, 0x88, 0x00, 0x97, 0x0F, 0, 0, 0],
            VbiosEncoding::Ascii => padded("97.00.88.00.0F", 15),
        };
        let mut opaque = Vec::new();
        for (tag, value) in [
            (OPAQUE_VBIOS_VERSION, vbios),
            (OPAQUE_CHIP_SKU, padded(self.board.chip_sku, 9)),
            (OPAQUE_PROJECT, padded(self.board.project, 5)),
            (OPAQUE_PROJECT_SKU, padded(self.board.project_sku, 5)),
            (OPAQUE_DRIVER_VERSION, padded("575.32", 7)),
            (OPAQUE_FWID, self.fwid.to_vec()),
        ] {
            opaque.extend_from_slice(&tag.to_le_bytes());
            opaque.extend_from_slice(&(value.len() as u16).to_le_bytes());
            opaque.extend_from_slice(&value);
        }
        r.extend_from_slice(&(opaque.len() as u16).to_le_bytes());
        r.extend_from_slice(&opaque);
        let signature: p384::ecdsa::Signature = self.leaf_key.sign(&r);
        r.extend_from_slice(&signature.to_bytes());
        r
    }

    /// [`Self::attest`] with the chain, as an evidence container (registration evidence, or a
    /// liveness answer when `nonce` is the challenge digest).
    pub fn evidence(&self, nonce: &[u8; 32]) -> Result<Vec<u8>, SeError> {
        Evidence::NvidiaSpdm(NvidiaEvidence {
            report: self.attest(nonce),
            chain: self.chain.clone(),
        })
        .encode()
        .map_err(cert_err)
    }
}
