# The device half plus `edgecnn serve` (no TensorFlow): docs/serve.md.
#   docker build -t edgecnn-serve .
#   python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > token && chmod 644 token
#   docker run --rm -p 8080:8080 -v "$PWD/model_int8.tflite:/models/model.tflite:ro" \
#       -v "$PWD/token:/run/secrets/edgecnn_token:ro" [--device /dev/video0 ... --source 0] edgecnn-serve
# Inside the container the server must bind 0.0.0.0 to be reachable through -p, so the default
# command requires a token (the server refuses a non-local bind without one).
FROM python:3.11-slim-bookworm

RUN useradd --create-home --uid 10001 --groups video edgecnn
WORKDIR /opt/edgecnn
COPY pyproject.toml README.md ./
COPY edgecnn ./edgecnn
RUN pip install --no-cache-dir ".[serve]" && rm -rf /root/.cache

USER edgecnn
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["edgecnn", "serve"]
CMD ["/models/model.tflite", "--host", "0.0.0.0", "--port", "8080", "--token-file", "/run/secrets/edgecnn_token"]
