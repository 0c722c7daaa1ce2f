# The container image, included by the top-level Makefile. The Dockerfile
# and image-check build the binary with the same script, mk/build-static.sh.

.PHONY: image image-check

## image: the container image payments:$(VERSION) (needs a container engine)
image:
	docker build --build-arg VERSION=$(VERSION) -t payments:$(VERSION) .

## image-check: build the image's static binary with the image's recipe, check it is static, run it as the image would (empty environment and directory, non-root) on a scratch database, /readyz 200, SIGTERM exits 0
image-check:
	VERSION=$(VERSION) mk/image-check.sh
