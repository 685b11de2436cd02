"""PyKMIP's client runs Discover Versions and Query against a ksg gateway over mutual TLS.

Usage: pykmip_discover_query.py HOST PORT TLS_DIR [KMIP_VERSION]
TLS_DIR holds ca.pem, client.pem and client.key (ksg's development PKI). Prints what it got and
exits non-zero if anything is missing or wrong.
"""

import sys

from kmip.core import enums
from kmip.pie.client import ProxyKmipClient
from kmip.services.kmip_client import KMIPProxy

VERSIONS = {
    "1.0": enums.KMIPVersion.KMIP_1_0,
    "1.1": enums.KMIPVersion.KMIP_1_1,
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.3": enums.KMIPVersion.KMIP_1_3,
    "1.4": enums.KMIPVersion.KMIP_1_4,
}


def main():
    host, port, tls = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    version = VERSIONS[sys.argv[4] if len(sys.argv) > 4 else "1.4"]
    proxy = KMIPProxy(
        host=host,
        port=port,
        certfile=tls + "/client.pem",
        keyfile=tls + "/client.key",
        ca_certs=tls + "/ca.pem",
        cert_reqs="CERT_REQUIRED",
        do_handshake_on_connect=True,
        suppress_ragged_eofs=True,
        kmip_version=version,
        config_file="/dev/null",
    )
    proxy.open()
    try:
        result = proxy.discover_versions()
        assert result.result_status.value == enums.ResultStatus.SUCCESS, result.result_message
        versions = [(v.major, v.minor) for v in result.protocol_versions]
        print("discover_versions:", versions)
        assert (1, 4) in versions and (1, 0) in versions, versions

        result = proxy.query(query_functions=[
            enums.QueryFunction.QUERY_OPERATIONS,
            enums.QueryFunction.QUERY_OBJECTS,
            enums.QueryFunction.QUERY_SERVER_INFORMATION,
        ])
        assert result.result_status.value == enums.ResultStatus.SUCCESS, result.result_message
        operations = [getattr(op.value, "value", op.value) for op in result.operations]
        print("query operations:", operations)
        print("query vendor:", result.vendor_identification)
        if version != enums.KMIPVersion.KMIP_1_0:  # Discover Versions is a KMIP 1.1 operation
            assert enums.Operation.DISCOVER_VERSIONS.value in operations, operations
        assert enums.Operation.QUERY.value in operations, operations
        vendor = result.vendor_identification
        vendor = getattr(vendor, "value", vendor)
        assert vendor and "ksg" in vendor, vendor
    finally:
        proxy.close()
    print("ok")


if __name__ == "__main__":
    main()
