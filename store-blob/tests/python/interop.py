"""Drives the official Python blob checkpoint store (azure-eventhub-checkpointstoreblob) for the
Rust interop test (store-blob/tests/interop_python.rs).

Usage: python interop.py COMMAND  < request.json  > response.json

The request is a JSON object with "connection_string", "container" and the command's fields;
the response is JSON on stdout. Commands:

  set_checkpoints   {"checkpoints": [{namespace, hub, group, partition, offset, sequence_number}]}
  list_checkpoints  {namespace, hub, group}
  claim             {"ownerships": [{namespace, hub, group, partition, owner, etag|null}]}
  list_ownership    {namespace, hub, group}
  raw_blob          {name, metadata}     uploads an empty blob with exactly this metadata
                                         (metadata key case kept, e.g. Java's "OwnerId")
  container_sas     {}                   a container SAS URL (read/add/create/write/delete/list)
"""

import datetime
import json
import sys

from azure.eventhub.extensions.checkpointstoreblob import BlobCheckpointStore
from azure.eventhub.extensions.checkpointstoreblob._vendor.storage.blob import ContainerClient
from azure.eventhub.extensions.checkpointstoreblob._vendor.storage.blob._shared_access_signature import (
    generate_container_sas,
)


def scope(d):
    return d["namespace"], d["hub"], d["group"]


def main():
    command = sys.argv[1]
    req = json.load(sys.stdin)
    store = BlobCheckpointStore.from_connection_string(req["connection_string"], req["container"])
    if command == "set_checkpoints":
        for c in req["checkpoints"]:
            store.update_checkpoint(
                {
                    "fully_qualified_namespace": c["namespace"],
                    "eventhub_name": c["hub"],
                    "consumer_group": c["group"],
                    "partition_id": c["partition"],
                    "offset": c["offset"],
                    "sequence_number": c["sequence_number"],
                }
            )
        out = {"ok": True}
    elif command == "list_checkpoints":
        out = [
            {
                "partition": c["partition_id"],
                "offset": c["offset"],
                "sequence_number": c["sequence_number"],
            }
            for c in store.list_checkpoints(*scope(req))
        ]
    elif command == "claim":
        claims = [
            {
                "fully_qualified_namespace": o["namespace"],
                "eventhub_name": o["hub"],
                "consumer_group": o["group"],
                "partition_id": o["partition"],
                "owner_id": o["owner"],
                "etag": o.get("etag"),
            }
            for o in req["ownerships"]
        ]
        out = [ownership_json(o) for o in store.claim_ownership(claims)]
    elif command == "list_ownership":
        out = [ownership_json(o) for o in store.list_ownership(*scope(req))]
    elif command == "raw_blob":
        container = ContainerClient.from_connection_string(req["connection_string"], req["container"])
        container.get_blob_client(req["name"]).upload_blob(b"", metadata=req["metadata"], overwrite=True)
        out = {"ok": True}
    elif command == "container_sas":
        container = ContainerClient.from_connection_string(req["connection_string"], req["container"])
        sas = generate_container_sas(
            account_name=container.account_name,
            container_name=req["container"],
            account_key=container.credential.account_key,
            permission="racwdl",
            expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
        )
        out = {"url": container.url + "?" + sas}
    else:
        raise SystemExit("unknown command " + command)
    json.dump(out, sys.stdout)


def ownership_json(o):
    return {
        "partition": o["partition_id"],
        "owner": o["owner_id"],
        "etag": o["etag"],
        "last_modified_time": o["last_modified_time"],
    }


if __name__ == "__main__":
    main()
