"""Import one case's history into the demo through ``POST /ingest/events`` (docs/INGEST.md, "Trying it on the demo").

    export JIANSHEN_INGEST_SECRET=$(.venv/bin/python -m api department secret ZH-NR --rotate | awk '{print $2}')
    .venv/bin/python examples/ingest_import.py [--dry-run] [--url http://127.0.0.1:8000] [--department ZH-NR]

Standard library only: this is what a department's integrator writes.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request

CASE = "ZRZY-JJ-2026-100001"
EVENTS = [
    {"eventId": "ZRZY-H-100001-1", "blzt": 1, "caseCode": CASE, "occurredAt": "2026-11-02T09:30:00+08:00",
     "projectCode": "2611-440402-47-01-900001", "itemCode": "NR-YDYS", "applicant": {"name": "刘经办"},
     "materials": [{"name": "建设项目用地预审申请表", "ref": "ZRZY-DOC-88121"},
                   {"name": "项目建议书批复文件", "ref": "ZRZY-DOC-88122"}],
     "opinion": "窗口接件",
     "project": {"name": "横琴口岸综合服务中心", "processType": 1, "regionCode": "440402",
                 "address": "珠海市横琴新区口岸大道1号", "investment": "56800.00",
                 "organization": {"name": "珠海横琴口岸建设有限公司", "uscc": "91440400MA55XY812G"}}},
    {"eventId": "ZRZY-H-100001-3", "blzt": 3, "caseCode": CASE, "occurredAt": "2026-11-02T10:00:00+08:00",
     "opinion": "材料齐全，予以受理"},
    {"eventId": "ZRZY-H-100001-8", "blzt": 8, "caseCode": CASE, "occurredAt": "2026-11-02T11:00:00+08:00"},
    {"eventId": "ZRZY-H-100001-9", "blzt": 9, "caseCode": CASE, "occurredAt": "2026-11-03T09:00:00+08:00",
     "specialProcedure": {"kind": "EXPERT_REVIEW", "reason": "选址涉及生态红线，需专家论证", "expectedDays": 5}},
    {"eventId": "ZRZY-H-100001-10", "blzt": 10, "caseCode": CASE, "occurredAt": "2026-11-06T09:00:00+08:00",
     "result": "专家论证通过"},
    # The decision, with the certificate the bureau's own system already issued: recorded here as the bureau's
    # (its number, dates, its reference to the file it keeps); this platform seals nothing for it.
    {"eventId": "ZRZY-H-100001-11", "blzt": 11, "caseCode": CASE, "occurredAt": "2026-11-09T16:00:00+08:00",
     "opinion": "符合用地预审与选址要求，准予许可",
     "document": {"approvalDate": "2026-11-09", "documentNumber": "珠自然资预审〔2026〕18号",
                  "documentTitle": "关于横琴口岸综合服务中心用地预审与选址意见的批复", "validUntil": "2029-11-08"},
     "certificate": {"number": "用字第440400202610018号", "issueDate": "2026-11-09", "validUntil": "2029-11-08",
                     "name": "建设项目用地预审与选址意见书",
                     "file": {"name": "建设项目用地预审与选址意见书.pdf", "ref": "ZRZY-ZZ-2026-10018"}}},
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--department", default="ZH-NR")
    parser.add_argument("--dry-run", action="store_true", help="answer what would be applied, keep nothing")
    args = parser.parse_args()
    secret = os.environ.get("JIANSHEN_INGEST_SECRET") or f"dev-ingest-secret-{args.department.lower()}"
    body = json.dumps({"events": EVENTS}, ensure_ascii=False).encode("utf-8")
    timestamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        args.url + "/ingest/events" + ("?dryRun=1" if args.dry_run else ""),
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-Jianshen-Department": args.department,
                 "X-Jianshen-Timestamp": timestamp, "X-Jianshen-Signature": signature},
    )
    try:
        with urllib.request.urlopen(request) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        print(error.code, error.read().decode("utf-8"), file=sys.stderr)
        return 1
    print("dry run: nothing kept" if answer.get("dryRun") else "applied")
    for r in answer["results"]:
        print(r["index"], r.get("eventId"), r["status"], r.get("state") or f"{r.get('code')} {r.get('message')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
