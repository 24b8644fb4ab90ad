"""Drives facegate through a client generated from its OpenAPI document by openapi-python-client.

Usage: generated_client.py URL KEY ENROL_IMAGE PROBE_IMAGE STRANGER_IMAGE (the generated package
`facegate_client` must be importable). Creates a collection and a subject, enrols one photo (JSON
base64), recognises a second photo of the same person (raw bytes) and a stranger's photo (multipart),
and prints what came back as one JSON line. Every call goes through the generated, typed functions.
"""

import base64
import json
import sys
from io import BytesIO

from facegate_client import AuthenticatedClient
from facegate_client.api.collections import create_collection
from facegate_client.api.identification import recognize, recognize_in
from facegate_client.api.subjects import create_subject, enroll_faces
from facegate_client.models import (
    CreateCollection,
    EnrollResponse,
    ImagesJson,
    ImageUpload,
    RecognizeResponse,
    SubjectBody,
    SubjectBodyMetadataType0,
)
from facegate_client.types import File


def main() -> None:
    url, key, enrol_path, probe_path, stranger_path = sys.argv[1:6]
    client = AuthenticatedClient(base_url=url, token=key, prefix="", auth_header_name="x-api-key")
    with client:
        collection = create_collection.sync(client=client, body=CreateCollection(name="generated-client"))
        metadata = SubjectBodyMetadataType0.from_dict({"badge": "G-1"})
        subject = create_subject.sync(collection.id, client=client, body=SubjectBody(name="Colin Powell", metadata=metadata))
        with open(enrol_path, "rb") as f:
            encoded = base64.b64encode(f.read()).decode()
        enrolled = enroll_faces.sync(collection.id, subject.id, client=client, body=ImagesJson(images=[encoded]))
        assert isinstance(enrolled, EnrollResponse), enrolled
        with open(probe_path, "rb") as f:
            probe = File(payload=BytesIO(f.read()), mime_type="application/octet-stream")
        same = recognize_in.sync(collection.id, client=client, body=probe)
        assert isinstance(same, RecognizeResponse), same
        with open(stranger_path, "rb") as f:
            stranger_file = File(payload=BytesIO(f.read()), file_name="stranger.jpg", mime_type="image/jpeg")
        stranger = recognize.sync(client=client, collection=collection.id, body=ImageUpload(image=stranger_file))
        assert isinstance(stranger, RecognizeResponse), stranger
    print(
        json.dumps(
            {
                "subject_id": subject.id,
                "accepted": len(enrolled.accepted),
                "same": [
                    {"result": f.result.value, "subject_id": f.subject.id if f.subject else None,
                     "name": f.subject.name if f.subject else None}
                    for f in same.faces
                ],
                "stranger": [{"result": f.result.value} for f in stranger.faces],
            }
        )
    )


if __name__ == "__main__":
    main()
