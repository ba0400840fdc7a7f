//! The NVIDIA checks that the real sample cannot exercise (it is genuine), on a synthetic
//! NVIDIA-shaped chain: our own root -> "GH100 A01 GSP BROM" -> "GH100 A01 GSP FMC LF" with a DICE
//! extension, and the real report re-signed by the synthetic leaf.

mod common;

use std::str::FromStr;

use common::*;
use der::asn1::{ObjectIdentifier, OctetString};
use der::Encode;
use p384::ecdsa::signature::Signer;
use spki::SubjectPublicKeyInfoOwned;
use unet_poci::nvidia;
use unet_poci::{EvidenceKind, NvidiaEvidence, TrustStore, VerifyError};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

const DICE_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1");
const SHA384_OID: &[u8] = &[
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
];

struct Profile {
    subject: Name,
    issuer: Name,
    ca: bool,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _: &Name) -> Name {
        self.issuer.clone()
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _: spki::SubjectPublicKeyInfoRef<'_>,
        _: spki::SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut exts = Vec::new();
        if self.ca {
            let bc = BasicConstraints {
                ca: true,
                path_len_constraint: None,
            };
            exts.push((&bc).to_extension(tbs.subject(), &exts)?);
            let ku = KeyUsage(KeyUsages::KeyCertSign.into());
            exts.push((&ku).to_extension(tbs.subject(), &exts)?);
        } else {
            let ku = KeyUsage(KeyUsages::DigitalSignature.into());
            exts.push((&ku).to_extension(tbs.subject(), &exts)?);
        }
        Ok(exts)
    }
}

fn key(n: u8) -> p384::ecdsa::SigningKey {
    p384::ecdsa::SigningKey::from_slice(&[n; 48]).unwrap()
}

fn spki(k: &p384::ecdsa::SigningKey) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned::from_key(k.verifying_key()).unwrap()
}

fn cert(
    subject: &str,
    issuer: &str,
    ca: bool,
    subject_key: &SubjectPublicKeyInfoOwned,
    signer: &p384::ecdsa::SigningKey,
    extra: Option<Extension>,
) -> Vec<u8> {
    let t = |s: &str| Time::from_str(s).unwrap();
    let validity = Validity::new(t("2020-01-01T00:00:00Z"), t("2099-01-01T00:00:00Z"));
    let profile = Profile {
        subject: Name::from_str(subject).unwrap(),
        issuer: Name::from_str(issuer).unwrap(),
        ca,
    };
    let mut b = CertificateBuilder::new(
        profile,
        SerialNumber::from(7u32),
        validity,
        subject_key.clone(),
    )
    .unwrap();
    if let Some(ext) = extra {
        b.add_extension(ext).unwrap();
    }
    b.build::<_, p384::ecdsa::DerSignature>(signer)
        .unwrap()
        .to_der()
        .unwrap()
}

/// DICE extension, NVIDIA's composite form: SEQUENCE { 1, identity SPKI, SEQUENCE { sha384, fwid } }.
fn dice_composite(identity: &SubjectPublicKeyInfoOwned, fwid: &[u8]) -> Extension {
    let mut fw = SHA384_OID.to_vec();
    fw.extend(OctetString::new(fwid).unwrap().to_der().unwrap());
    let mut body = vec![0x02, 0x01, 0x01];
    body.extend(identity.to_der().unwrap());
    body.extend(tlv(0x30, &fw));
    extension(tlv(0x30, &body))
}

/// DICE extension, TCG DiceTcbInfo form with `fwids [6]`.
fn dice_tcb_info(fwid: &[u8]) -> Extension {
    let mut fw = SHA384_OID.to_vec();
    fw.extend(OctetString::new(fwid).unwrap().to_der().unwrap());
    let mut body = tlv(0x80, b"NVIDIA"); // vendor [0] IMPLICIT UTF8String
    body.extend(tlv(0xA6, &tlv(0x30, &fw))); // fwids [6] IMPLICIT SEQUENCE OF FWID
    extension(tlv(0x30, &body))
}

fn extension(value: Vec<u8>) -> Extension {
    Extension {
        extn_id: DICE_OID,
        critical: false,
        extn_value: OctetString::new(value).unwrap(),
    }
}

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

struct Fixture {
    root: Vec<u8>,
    ica: Vec<u8>,
    brom: Vec<u8>,
    leaf_key: p384::ecdsa::SigningKey,
    brom_key: p384::ecdsa::SigningKey,
    fwid: Vec<u8>,
}

/// The names fit the Hopper entry of the architecture table: the BROM's issuer is a
/// "NVIDIA GH100 Provisioner ICA", whose issuer is "NVIDIA GH100 Identity" (here the root).
const ROOT_NAME: &str = "CN=NVIDIA GH100 Identity,O=Test";
const ICA_NAME: &str = "CN=NVIDIA GH100 Provisioner ICA 1,O=Test";
const BROM_NAME: &str = "CN=GH100 A01 GSP BROM,serialNumber=5EED0001,O=Test";
const LEAF_NAME: &str = "CN=GH100 A01 GSP FMC LF,O=Test";

fn fixture() -> Fixture {
    let root_key = key(1);
    let brom_key = key(2);
    let ica_key = key(4);
    let root = cert(
        ROOT_NAME,
        ROOT_NAME,
        true,
        &spki(&root_key),
        &root_key,
        None,
    );
    let ica = cert(ICA_NAME, ROOT_NAME, true, &spki(&ica_key), &root_key, None);
    let brom = cert(BROM_NAME, ICA_NAME, true, &spki(&brom_key), &ica_key, None);
    let report = evidence().report;
    let att = nvidia::parse_report(&report).unwrap();
    let fwid = att
        .opaque
        .iter()
        .find(|f| f.tag == 20)
        .unwrap()
        .value
        .clone();
    Fixture {
        root,
        ica,
        brom,
        leaf_key: key(3),
        brom_key,
        fwid,
    }
}

impl Fixture {
    fn trust(&self) -> TrustStore {
        let mut t = TrustStore::new();
        t.add_root(EvidenceKind::NvidiaSpdm, &self.root, false)
            .unwrap();
        t
    }

    fn leaf(&self, dice: Option<Extension>) -> Vec<u8> {
        cert(
            LEAF_NAME,
            BROM_NAME,
            false,
            &spki(&self.leaf_key),
            &self.brom_key,
            dice,
        )
    }

    /// The real report, edited by `edit`, re-signed with the synthetic leaf key.
    fn report(&self, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut r = evidence().report;
        r.truncate(r.len() - 96);
        edit(&mut r);
        let sig: p384::ecdsa::Signature = self.leaf_key.sign(&r);
        r.extend_from_slice(&sig.to_bytes());
        r
    }

    fn evidence(&self, report: Vec<u8>, leaf: Vec<u8>) -> NvidiaEvidence {
        NvidiaEvidence {
            report,
            chain: vec![leaf, self.brom.clone(), self.ica.clone(), self.root.clone()],
        }
    }
}

fn fwid_pos(report: &[u8], fwid: &[u8]) -> usize {
    report.windows(fwid.len()).position(|w| w == fwid).unwrap()
}

#[test]
fn synthetic_chain_verifies() {
    let f = fixture();
    let leaf = f.leaf(Some(dice_composite(&spki(&f.brom_key), &f.fwid)));
    let att = nvidia::verify(
        &f.evidence(f.report(|_| {}), leaf),
        &nonce(),
        NOW,
        &f.trust(),
    )
    .unwrap();
    assert_eq!(att.identity.model, "H100");
    assert_eq!(att.identity.serial, "5EED0001");
    let brom_point = f
        .brom_key
        .verifying_key()
        .to_sec1_point(false)
        .as_bytes()
        .to_vec();
    assert_eq!(att.identity.device_public_key.sec1, brom_point);
    assert_eq!(
        att.identity.chip_id,
        unet_poci::DevicePublicKey::from_sec1(unet_poci::Curve::P384, &brom_point)
            .unwrap()
            .chip_id(EvidenceKind::NvidiaSpdm)
    );
    // The TCG DiceTcbInfo form is Blackwell's (under 2.23.133.5.4.1.1): a Hopper leaf carrying
    // it is refused, since the architecture table, not the certificate, says how to read it.
    let leaf = f.leaf(Some(dice_tcb_info(&f.fwid)));
    assert!(matches!(
        nvidia::verify(
            &f.evidence(f.report(|_| {}), leaf),
            &nonce(),
            NOW,
            &f.trust(),
        )
        .unwrap_err(),
        VerifyError::DiceExtension(_)
    ));
}

#[test]
fn report_fwid_must_match_the_leaf() {
    let f = fixture();
    let leaf = f.leaf(Some(dice_composite(&spki(&f.brom_key), &f.fwid)));
    // Signed report of other firmware.
    let report = f.report(|r| {
        let p = fwid_pos(r, &f.fwid);
        r[p] ^= 1;
    });
    assert_eq!(
        nvidia::verify(&f.evidence(report, leaf.clone()), &nonce(), NOW, &f.trust()).unwrap_err(),
        VerifyError::FwidMismatch
    );
    // Report without an FWID field (its tag renamed to an unknown one): a GPU report must have one.
    let report = f.report(|r| {
        let p = fwid_pos(r, &f.fwid);
        r[p - 4] = 99;
    });
    assert_eq!(
        nvidia::verify(&f.evidence(report, leaf), &nonce(), NOW, &f.trust()).unwrap_err(),
        VerifyError::MissingOpaqueField(20)
    );
    // Leaf whose DICE FWID differs.
    let mut other = f.fwid.clone();
    other[47] ^= 1;
    let leaf = f.leaf(Some(dice_composite(&spki(&f.brom_key), &other)));
    assert_eq!(
        nvidia::verify(
            &f.evidence(f.report(|_| {}), leaf),
            &nonce(),
            NOW,
            &f.trust()
        )
        .unwrap_err(),
        VerifyError::FwidMismatch
    );
}

#[test]
fn dice_extension_required_and_bound_to_the_brom_key() {
    let f = fixture();
    let leaf = f.leaf(None);
    assert_eq!(
        nvidia::verify(
            &f.evidence(f.report(|_| {}), leaf),
            &nonce(),
            NOW,
            &f.trust()
        )
        .unwrap_err(),
        VerifyError::DiceExtension("missing from the leaf certificate")
    );
    let leaf = f.leaf(Some(dice_composite(&spki(&key(9)), &f.fwid)));
    assert_eq!(
        nvidia::verify(
            &f.evidence(f.report(|_| {}), leaf),
            &nonce(),
            NOW,
            &f.trust()
        )
        .unwrap_err(),
        VerifyError::DiceIdentityMismatch
    );
    let leaf = f.leaf(Some(extension(tlv(0x30, &[0x05, 0x00]))));
    assert!(matches!(
        nvidia::verify(
            &f.evidence(f.report(|_| {}), leaf),
            &nonce(),
            NOW,
            &f.trust()
        )
        .unwrap_err(),
        VerifyError::DiceExtension(_)
    ));
}

#[test]
fn deviceid_certificate_must_be_the_brom() {
    let f = fixture();
    let root_key = key(1);
    let not_brom = "CN=GH100 A01 GSP SOMETHING,serialNumber=5EED0001,O=Test";
    let brom = cert(
        not_brom,
        ROOT_NAME,
        true,
        &spki(&f.brom_key),
        &root_key,
        None,
    );
    let leaf = cert(
        LEAF_NAME,
        not_brom,
        false,
        &spki(&f.leaf_key),
        &f.brom_key,
        Some(dice_composite(&spki(&f.brom_key), &f.fwid)),
    );
    let e = NvidiaEvidence {
        report: f.report(|_| {}),
        chain: vec![leaf, brom, f.root.clone()],
    };
    assert_eq!(
        nvidia::verify(&e, &nonce(), NOW, &f.trust()).unwrap_err(),
        VerifyError::ArchitectureMismatch { index: 1 }
    );
}

#[test]
fn synthetic_root_is_not_nvidia() {
    let f = fixture();
    let leaf = f.leaf(Some(dice_composite(&spki(&f.brom_key), &f.fwid)));
    let e = f.evidence(f.report(|_| {}), leaf);
    assert_eq!(
        nvidia::verify(&e, &nonce(), NOW, &TrustStore::with_nvidia_root()).unwrap_err(),
        VerifyError::UnknownRoot
    );
}

/// Issue 12, item 9: one DeviceID key presented through two evidence kinds names two chips.
/// A vendor-x509 CA certifies the synthetic NVIDIA BROM key, whose holder signs a vendor-x509
/// registration with it: both verify, with the same key and different chip ids, and revoking
/// one id leaves the other chip alone.
#[test]
fn one_key_under_two_evidence_kinds_gives_two_chip_ids() {
    use unet_poci::secure_element::DevnetVendorCa;
    use unet_poci::{x509, DevicePublicKey, VendorX509Evidence};

    let f = fixture();
    let leaf = f.leaf(Some(dice_composite(&spki(&f.brom_key), &f.fwid)));
    let nv = nvidia::verify(
        &f.evidence(f.report(|_| {}), leaf.clone()),
        &nonce(),
        NOW,
        &f.trust(),
    )
    .unwrap()
    .identity;

    let ca = DevnetVendorCa::from_seed(b"cross-kind vendor").unwrap();
    let brom_key = DevicePublicKey::from_sec1(
        unet_poci::Curve::P384,
        f.brom_key.verifying_key().to_sec1_point(false).as_bytes(),
    )
    .unwrap();
    let device_cert = ca.issue_device_cert(&brom_key, "H100", "5EED0001").unwrap();
    let digest = x509::registration_digest(&nonce());
    let sig: p384::ecdsa::Signature = f.brom_key.sign(&digest);
    let vx_evidence = VendorX509Evidence {
        nonce: nonce(),
        chain: ca.chain_for(device_cert),
        signature: sig.normalize_s().to_bytes().to_vec(),
    };
    let mut trust = ca.trust_store();
    trust
        .add_root(EvidenceKind::NvidiaSpdm, &f.root, false)
        .unwrap();
    let vx = x509::verify(&vx_evidence, &nonce(), NOW, &trust).unwrap();

    assert_eq!(vx.device_public_key, nv.device_public_key);
    assert_ne!(vx.chip_id, nv.chip_id, "one key, two kinds, two chips");
    assert_eq!(
        vx.chip_id,
        unet_poci::chip_id(EvidenceKind::VendorX509, &brom_key.sec1)
    );
    assert_eq!(
        nv.chip_id,
        unet_poci::chip_id(EvidenceKind::NvidiaSpdm, &brom_key.sec1)
    );

    // Revoking the vendor-x509 chip does not revoke the NVIDIA one, and the reverse.
    let mut revoked = trust.clone();
    revoked.revoke_chip(vx.chip_id);
    assert!(matches!(
        x509::verify(&vx_evidence, &nonce(), NOW, &revoked),
        Err(VerifyError::ChipRevoked(_))
    ));
    nvidia::verify(
        &f.evidence(f.report(|_| {}), leaf.clone()),
        &nonce(),
        NOW,
        &revoked,
    )
    .unwrap();
    let mut revoked = trust.clone();
    revoked.revoke_chip(nv.chip_id);
    x509::verify(&vx_evidence, &nonce(), NOW, &revoked).unwrap();
    assert!(matches!(
        nvidia::verify(&f.evidence(f.report(|_| {}), leaf), &nonce(), NOW, &revoked),
        Err(VerifyError::ChipRevoked(_))
    ));
}
