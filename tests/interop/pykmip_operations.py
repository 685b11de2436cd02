"""PyKMIP's client runs every operation it offers against a ksg gateway over mutual TLS, and
checks the results against an independent implementation (Python's `cryptography` package).

Usage: pykmip_operations.py HOST PORT TLS_DIR KMIP_VERSION
Prints one line per operation and "ok" at the end; exits non-zero at the first problem.
"""

import os
import sys

from cryptography.hazmat.primitives import hashes, hmac, padding as sympad, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from kmip.core import enums
from kmip.core.factories import attributes as attribute_factory
from kmip.pie import objects
from kmip.pie.client import ProxyKmipClient

VERSIONS = {
    "1.0": enums.KMIPVersion.KMIP_1_0,
    "1.1": enums.KMIPVersion.KMIP_1_1,
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.3": enums.KMIPVersion.KMIP_1_3,
    "1.4": enums.KMIPVersion.KMIP_1_4,
}
U = enums.CryptographicUsageMask


def step(name, value=""):
    print(f"{name}: {value}")


def main():
    host, port, tls, version_text = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    version = VERSIONS[version_text]
    tag = f"pykmip-{version_text}-{os.getpid()}"
    client = ProxyKmipClient(
        hostname=host,
        port=port,
        cert=tls + "/client.pem",
        key=tls + "/client.key",
        ca=tls + "/ca.pem",
        config_file="/dev/null",
        kmip_version=version,
    )
    client.open()
    try:
        run(client, version, tag)
    finally:
        client.close()
    print("ok")


def run(client, version, tag):
    # Create, Get, Get Attributes, Get Attribute List, Locate, Activate.
    aes = client.create(
        enums.CryptographicAlgorithm.AES, 256, name=tag + "-aes",
        cryptographic_usage_mask=[U.ENCRYPT, U.DECRYPT])
    step("create", aes)
    key = client.get(aes)
    assert isinstance(key, objects.SymmetricKey) and len(key.value) == 32, key
    step("get", f"{len(key.value)} bytes")
    uid, attrs = client.get_attributes(aes, ["Cryptographic Algorithm", "Cryptographic Length", "State"])
    got = {a.attribute_name.value: a.attribute_value.value for a in attrs}
    assert uid == aes and got["Cryptographic Length"] == 256, got
    assert got["State"] == enums.State.PRE_ACTIVE, got
    step("get_attributes", sorted(got))
    names = client.get_attribute_list(aes)
    assert "Cryptographic Algorithm" in names and "Name" in names, names
    if version == enums.KMIPVersion.KMIP_1_0:
        assert "Fresh" not in names, f"a 1.0 client got a 1.1 attribute: {names}"
    step("get_attribute_list", len(names))
    name_attr = attribute_factory.AttributeFactory().create_attribute(
        enums.AttributeType.NAME, tag + "-aes")
    found = client.locate(attributes=[name_attr])
    assert found == [aes], found
    # A similar name must not match.
    similar = client.create(enums.CryptographicAlgorithm.AES, 128, name=tag + "-aes2",
                            cryptographic_usage_mask=[U.ENCRYPT])
    assert client.locate(attributes=[name_attr]) == [aes]
    step("locate", found)
    client.activate(aes)
    uid, attrs = client.get_attributes(aes, ["State"])
    assert attrs[0].attribute_value.value == enums.State.ACTIVE
    step("activate", "Active")

    # Register (a symmetric key, secret data, an opaque object) and Get them back.
    raw = os.urandom(16)
    reg = client.register(objects.SymmetricKey(
        enums.CryptographicAlgorithm.AES, 128, raw, [U.ENCRYPT, U.DECRYPT], tag + "-reg"))
    assert client.get(reg).value == raw
    secret = client.register(objects.SecretData(b"password123", enums.SecretDataType.PASSWORD,
                                                name=tag + "-secret"))
    assert client.get(secret).value == b"password123"
    opaque = client.register(objects.OpaqueObject(b"\x01\x02opaque", enums.OpaqueDataType.NONE,
                                                  name=tag + "-opaque"))
    assert client.get(opaque).value == b"\x01\x02opaque"
    step("register", [reg, secret, opaque])

    if version >= enums.KMIPVersion.KMIP_1_2:
        # Encrypt/Decrypt AES-CBC, checked against `cryptography`.
        client.activate(reg)
        iv = os.urandom(16)
        params = {
            "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
            "block_cipher_mode": enums.BlockCipherMode.CBC,
            "padding_method": enums.PaddingMethod.PKCS5,
        }
        message = b"attack at dawn, bring the keys"
        ciphertext, _ = client.encrypt(message, uid=reg, cryptographic_parameters=params,
                                       iv_counter_nonce=iv)
        padder = sympad.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(raw), modes.CBC(iv)).encryptor()
        expected = enc.update(padder.update(message) + padder.finalize()) + enc.finalize()
        assert ciphertext == expected, "AES-CBC ciphertext differs from cryptography's"
        plain = client.decrypt(ciphertext, uid=reg, cryptographic_parameters=params,
                               iv_counter_nonce=iv)
        assert plain == message
        step("encrypt/decrypt", "AES-256-CBC matches cryptography")

        # Create Key Pair, Sign, Signature Verify; the signature checks out with the public key.
        pub, priv = client.create_key_pair(
            enums.CryptographicAlgorithm.RSA, 2048,
            public_name=tag + "-pub", public_usage_mask=[U.VERIFY],
            private_name=tag + "-priv", private_usage_mask=[U.SIGN])
        client.activate(priv)
        client.activate(pub)
        sig_params = {
            "cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
            "hashing_algorithm": enums.HashingAlgorithm.SHA_256,
            "padding_method": enums.PaddingMethod.PKCS1v15,
        }
        signature = client.sign(message, uid=priv, cryptographic_parameters=sig_params)
        public = client.get(pub)
        der = public.value
        try:
            pk = serialization.load_der_public_key(der)
        except ValueError:
            from cryptography.hazmat.primitives.serialization import load_der_public_key
            pk = load_der_public_key(der)
        pk.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        valid = client.signature_verify(message, signature, uid=pub,
                                        cryptographic_parameters=sig_params)
        assert valid == enums.ValidityIndicator.VALID, valid
        bad = client.signature_verify(message + b"!", signature, uid=pub,
                                      cryptographic_parameters=sig_params)
        assert bad == enums.ValidityIndicator.INVALID, bad
        step("create_key_pair/sign/signature_verify", "RSA-2048 PKCS#1 v1.5 verified by cryptography")

        # MAC with an HMAC key the client registered, checked against `cryptography`.
        mac_key = os.urandom(32)
        hk = client.register(objects.SymmetricKey(
            enums.CryptographicAlgorithm.HMAC_SHA256, 256, mac_key, [U.MAC_GENERATE],
            tag + "-hmac"))
        client.activate(hk)
        _, mac = client.mac(message, uid=hk, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
        h = hmac.HMAC(mac_key, hashes.SHA256())
        h.update(message)
        assert mac == h.finalize(), "HMAC differs from cryptography's"
        step("mac", "HMAC-SHA256 matches cryptography")
        for uid in (priv, pub, hk):
            client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
            client.destroy(uid)

    # Derive Key by PBKDF2 from registered secret data, checked against Python's hashlib.
    import hashlib
    seed = client.register(objects.SecretData(b"correct horse", enums.SecretDataType.SEED,
                                              masks=[U.DERIVE_KEY], name=tag + "-seed"))
    client.activate(seed)
    derived = client.derive_key(
        enums.ObjectType.SYMMETRIC_KEY, [seed], enums.DerivationMethod.PBKDF2,
        {"cryptographic_parameters": {"hashing_algorithm": enums.HashingAlgorithm.SHA_256},
         "salt": b"NaCl", "iteration_count": 1000},
        cryptographic_algorithm=enums.CryptographicAlgorithm.AES, cryptographic_length=256)
    expected = hashlib.pbkdf2_hmac("sha256", b"correct horse", b"NaCl", 1000, 32)
    assert client.get(derived).value == expected, "PBKDF2 differs from hashlib's"
    step("derive_key", "PBKDF2-HMAC-SHA256 matches hashlib")
    client.destroy(derived)
    client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, seed)
    client.destroy(seed)

    # Re-key (1.1+ in PyKMIP's encoding) and Check.
    if version >= enums.KMIPVersion.KMIP_1_1:
        new = client.rekey(uid=aes, offset=0)
        assert new and new != aes, new
        step("rekey", new)
        client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, new)
        client.destroy(new)
    checked = client.check(aes, cryptographic_usage_mask=[U.ENCRYPT])
    assert checked == aes, checked
    step("check", checked)

    # Revoke and Destroy everything; a destroyed key cannot be fetched.
    for uid in (aes, reg):
        client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
        client.destroy(uid)
    for uid in (similar, secret, opaque):
        client.destroy(uid)
    try:
        client.get(aes)
    except Exception as e:  # PyKMIP raises KmipOperationFailure
        step("get after destroy", type(e).__name__)
    else:
        raise AssertionError("a destroyed key was returned")
    step("revoke/destroy", "done")


if __name__ == "__main__":
    main()
