#!/bin/bash
# needs: none
# The AWS simulator's SigV4 verifier, against AWS's published test vectors:
# what the ECR tests rely on to catch a wrongly signed request.
cd "$(dirname "$0")/../.." && exec python3 tests/lib/awssim.py --self-test
