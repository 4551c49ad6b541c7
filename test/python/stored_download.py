"""Downloads one video's content with the official openai SDK, unmodified, and checks its bytes.

Run by test/integration/stored-results-s3.test.ts against a gateway that answers the download with a 302 to
a presigned storage URL: the SDK must follow it. Usage: stored_download.py BASE_URL API_KEY VIDEO_ID BYTES
"""
import sys

import openai


def main() -> None:
    base_url, api_key, video_id, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0)
    data = client.videos.download_content(video_id).read()
    if len(data) != size:
        sys.exit(f"expected {size} bytes, got {len(data)}")
    # The simulator's videos: byte i is i % 251.
    for i in (0, 1, 250, 251, size - 1):
        if data[i] != i % 251:
            sys.exit(f"byte {i} is {data[i]}, expected {i % 251}")
    print(f"downloaded {len(data)} bytes with openai {openai.__version__}")


if __name__ == "__main__":
    main()
