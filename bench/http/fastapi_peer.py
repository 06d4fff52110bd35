# The FastAPI peer: the old backend's status route on Debian's python3-fastapi and uvicorn,
# one worker, serving one job kept in memory (as the old backend kept its jobs), uvicorn's
# defaults otherwise (its access log on, as songd's is).
#   /usr/bin/python3 bench/http/fastapi_peer.py PORT STATUS_JSON_FILE
import json
import sys
from typing import Any, Dict, Optional

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI()
jobs: Dict[str, Dict[str, Any]] = {}


class JobStatus(BaseModel):
    job_id: str
    status: str
    created_at: str
    started_at: Optional[str] = None
    completed_at: Optional[str] = None
    output_file: Optional[str] = None
    s3_url: Optional[str] = None
    error: Optional[str] = None
    queue_position: Optional[int] = None
    estimated_wait_minutes: Optional[int] = None
    progress: int = 0
    expires_at: Optional[str] = None
    seed: Optional[int] = None
    payment: Optional[Dict[str, Any]] = None
    download_url: Optional[str] = None
    preview_url: Optional[str] = None
    audio: Optional[Dict[str, Any]] = None


@app.get("/api/v1/status/{job_id}", response_model=JobStatus)
async def get_status(job_id: str):
    if job_id not in jobs:
        raise HTTPException(status_code=404, detail="Job not found")
    return jobs[job_id]


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        doc = json.load(f)
    jobs[doc["job_id"]] = doc
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]))
