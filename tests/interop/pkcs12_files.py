"""PKCS#12 files made and read by Python's `cryptography` (an implementation independent of
ksg's), for tests/pkcs12_register_get_python_cryptography.rs.

  make DIR       writes, for an RSA key with a self-signed certificate and an EC key with a
                 certificate issued by an EC CA: modern.p12 (PBES2/AES-256, the library's best
                 available encryption), legacy.p12 (PKCS#12 PBE SHA-1 3DES, SHA-1 MAC, as Java
                 and OpenSSL 1.x write), each key as PKCS#8 DER (rsa.key, ec.key) and each
                 certificate as DER (rsa.crt, ec.crt, ca.crt). The password is "correct horse".
  check FILE PASSWORD KEY CERT...
                 reads FILE and checks that it holds KEY (PKCS#8 DER) and exactly CERT... (DER, the
                 key's own certificate first), and that its friendly name is "ksg-test"; prints ok.
"""
import datetime
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PASSWORD = b"correct horse"


def certificate(subject, issuer, public_key, signing_key, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )


def der(obj):
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.DER)
    return obj.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make(out):
    out = pathlib.Path(out)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_cert = certificate("ksg rsa", "ksg rsa", rsa_key.public_key(), rsa_key, False)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate("ksg ca", "ksg ca", ca_key.public_key(), ca_key, True)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_cert = certificate("ksg ec", "ksg ca", ec_key.public_key(), ca_key, False)
    legacy = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(PASSWORD)
    )
    (out / "modern.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"ksg-test", rsa_key, rsa_cert, None,
            serialization.BestAvailableEncryption(PASSWORD),
        )
    )
    (out / "legacy.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(b"ksg-test", ec_key, ec_cert, [ca_cert], legacy)
    )
    for name, obj in [("rsa.key", rsa_key), ("rsa.crt", rsa_cert), ("ec.key", ec_key),
                      ("ec.crt", ec_cert), ("ca.crt", ca_cert)]:
        (out / name).write_bytes(der(obj))


def check(path, password, key_path, *cert_paths):
    p12 = pkcs12.load_pkcs12(pathlib.Path(path).read_bytes(), password.encode())
    want_key = pathlib.Path(key_path).read_bytes()
    assert der(p12.key) == want_key, "the key differs"
    got = [der(p12.cert.certificate)] + [der(c.certificate) for c in p12.additional_certs]
    want = [pathlib.Path(c).read_bytes() for c in cert_paths]
    assert got == want, f"certificates differ: {len(got)} got, {len(want)} wanted"
    assert p12.cert.friendly_name == b"ksg-test", p12.cert.friendly_name
    print("ok")


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](*sys.argv[2:])
