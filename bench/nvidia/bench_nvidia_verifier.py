#!/usr/bin/env python3
"""Time NVIDIA's own local GPU verifier (PyPI `nv-local-gpu-verifier`, 2.7.3) on the same H100
report and certificate chain that `unet-poci` verifies, one verification at a time, on one core.

The timed path is what `verifier.cc_admin.attest()` runs for the device evidence, in the same
order, calling the package's own functions (nothing re-implemented):

  1. `GpuCertificateChains.extract_cert_chain`   PEM chain -> pyOpenSSL certificates; like
     NVIDIA's `GpuCertificateChains.__init__`, the chain's own last (root) certificate is
     replaced by the pinned `verifier/certs/verifier_device_root.pem` (loaded once, outside
     the loop, as NVIDIA does at start-up)
  2. `AttestationReport(report, HopperSettings())`  parse the SPDM request || response
  3. `CcAdminUtils.verify_gpu_certificate_chain`   leaf DICE FWID == report FWID, then OpenSSL
     X509StoreContext path validation leaf..root (4 P-384 certificate signatures, dates)
  4. `CcAdminUtils.verify_attestation_report`      requester nonce == expected, driver and VBIOS
     versions == the ones the driver reported, then the report's P-384/SHA-384 signature by the
     leaf key (python-ecdsa, as NVIDIA ships it)

Not timed, because they need the network, which is closed here (and is not available to a
blockchain validator either): `CcAdminUtils.ocsp_certificate_chain_validation` (one OCSP request
per certificate to ocsp.ndis.nvidia.com) and the driver/VBIOS RIM fetch from
rim.attestation.nvidia.com with their XML-signature, OCSP and measurement comparison
(`Verifier.verify`). Running `python -m verifier.cc_admin --test_no_gpu` here stops at
"OCSP request failed" right after the certificate chain validated.

Usage:
  python3 bench_nvidia_verifier.py --vectors DIR [--iterations N] [--seconds S] [--keep-logging]

DIR holds hopperAttestationReport.txt, hopperCertChain.txt and
hopperAttestationReportInvalidSignature.txt (crates/poci/tests/vectors/ or
/work/shared/vectors/nvidia/). Prints one JSON object.
"""

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time

NONCE_HEX = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
# What NvmlHandlerTest (the package's --test_no_gpu GPU stand-in) says the driver reported.
DRIVER_VERSION = "550.90.07"
VBIOS_VERSION = "96.00.9f.00.01"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vectors", required=True)
    ap.add_argument("--iterations", type=int, default=200, help="timed verifications (default 200)")
    ap.add_argument("--seconds", type=float, default=0.0, help="run at least this long instead")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument(
        "--keep-logging",
        action="store_true",
        help="leave NVIDIA's loggers as shipped (INFO to stdout, DEBUG to ./verifier.log)",
    )
    args = ap.parse_args()
    vectors = os.path.abspath(args.vectors)

    # The package writes ./verifier.log on import; keep it out of the caller's directory.
    os.chdir(tempfile.mkdtemp(prefix="nv-verifier-bench-"))
    from OpenSSL import crypto
    from importlib.metadata import version as dist_version
    from verifier.attestation import AttestationReport
    from verifier.cc_admin_utils import CcAdminUtils
    from verifier.config import BaseSettings, HopperSettings, event_log, info_log
    from verifier.exceptions import NonceMismatchError
    from verifier.nvml.gpu_cert_chains import GpuCertificateChains
    from verifier.utils import convert_string_to_blob

    if not args.keep_logging:
        info_log.setLevel(logging.CRITICAL)
        event_log.setLevel(logging.CRITICAL)

    def read(name, mode="r"):
        with open(os.path.join(vectors, name), mode) as f:
            return f.read()

    report = convert_string_to_blob(read("hopperAttestationReport.txt"))
    bad_report = convert_string_to_blob(read("hopperAttestationReportInvalidSignature.txt"))
    chain_pem = read("hopperCertChain.txt", "rb")
    with open(BaseSettings.DEVICE_ROOT_CERT, "r") as f:
        pinned_root = crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
    nonce = bytes.fromhex(NONCE_HEX)

    def verify(report_bytes, expected_nonce):
        settings = HopperSettings()
        chain = GpuCertificateChains.extract_cert_chain(chain_pem)[:-1] + [pinned_root]
        att = AttestationReport(report_bytes, settings)
        fwid = att.get_response_message().get_opaque_data().get_data("OPAQUE_FIELD_ID_FWID").hex()
        # Returns False on an FWID mismatch, else (ok, expired, earliest_not_after).
        chain_result = CcAdminUtils.verify_gpu_certificate_chain(chain, settings, fwid)
        if chain_result is False or not chain_result[0]:
            return False
        return CcAdminUtils.verify_attestation_report(
            attestation_report_obj=att,
            gpu_leaf_certificate=chain[0],
            nonce=expected_nonce,
            driver_version=DRIVER_VERSION,
            vbios_version=VBIOS_VERSION,
            settings=settings,
        )

    # Same verdicts as unet-poci on the same files, before timing anything.
    assert verify(report, nonce) is True, "valid sample must verify"
    # (NVIDIA rejects this sample at its FWID comparison, before the signature: its FWID TLV
    # differs from the leaf's; unet-poci checks the signature first and says report_signature_invalid.)
    assert verify(bad_report, nonce) is False, "invalid-signature sample must be rejected"
    wrong = bytearray(nonce)
    wrong[31] ^= 1
    try:
        verify(report, bytes(wrong))
        raise AssertionError("wrong nonce must be rejected")
    except NonceMismatchError:
        pass

    for _ in range(args.warmup):
        verify(report, nonce)
    samples = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        ok = verify(report, nonce)
        samples.append(time.perf_counter() - t0)
        if not ok:
            raise AssertionError("verification failed inside the loop")
        if len(samples) >= args.iterations and time.perf_counter() - start >= args.seconds:
            break
    total = time.perf_counter() - start

    # Where the time goes: each step of the same path timed on its own.
    steps = {"pem_chain_parse": [], "report_parse": [], "fwid_and_openssl_chain": [],
             "nonce_versions_and_report_signature": []}
    for _ in range(min(len(samples), 100)):
        settings = HopperSettings()
        t0 = time.perf_counter()
        chain = GpuCertificateChains.extract_cert_chain(chain_pem)[:-1] + [pinned_root]
        t1 = time.perf_counter()
        att = AttestationReport(report, settings)
        t2 = time.perf_counter()
        fwid = att.get_response_message().get_opaque_data().get_data("OPAQUE_FIELD_ID_FWID").hex()
        CcAdminUtils.verify_gpu_certificate_chain(chain, settings, fwid)
        t3 = time.perf_counter()
        CcAdminUtils.verify_attestation_report(att, chain[0], nonce, DRIVER_VERSION,
                                               VBIOS_VERSION, settings)
        t4 = time.perf_counter()
        for name, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            steps[name].append(dt)

    mean = statistics.fmean(samples)
    result = {
        "verifier": "nv-local-gpu-verifier",
        "version": dist_version("nv-local-gpu-verifier"),
        "python": platform.python_version(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "logging": "as shipped" if args.keep_logging else "disabled",
        "iterations": len(samples),
        "mean_ms": round(mean * 1e3, 3),
        "median_ms": round(statistics.median(samples) * 1e3, 3),
        "min_ms": round(min(samples) * 1e3, 3),
        "stdev_ms": round(statistics.stdev(samples) * 1e3, 3) if len(samples) > 1 else 0.0,
        "verifications_per_second": round(len(samples) / total, 2),
        "steps_mean_ms": {k: round(statistics.fmean(v) * 1e3, 3) for k, v in steps.items()},
        "timed_path": "PEM parse + report parse + FWID match + OpenSSL chain validation "
        "+ nonce/driver/VBIOS match + report signature (python-ecdsa); no OCSP, no RIM",
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
