"""Tests of the Helm chart (charts/switchboard), rendered offline by Helm's own engine."""
