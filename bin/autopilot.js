#!/usr/bin/env node
import "../dist/cli/autopilot.js"
