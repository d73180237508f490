# -*- coding: utf-8 -*-
# Copyright (c) airgap.docker contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The progress file of image_archive and container_archive.
    DOCUMENTATION = r"""
options:
  progress_file:
    description:
      - A file on the managed host to which the module appends a line about how far a long transfer has come (a save,
        load, export or import), so that an operator can follow it with C(tail -f) while the task runs.
      - It gets a line when the transfer starts, then, while bytes flow, one every 5 seconds or every tenth of the total,
        whichever comes first, and a last line when the transfer is done or has failed (with the reason). Each line holds the time, what is
        moved (for example C(saving redis:7 to /srv/transfer/app.tar.zst)), the bytes so far, the total when it is
        known, the rate and the time left.
      - A load or import counts the archive's bytes against the file's size. A save counts the uncompressed tar against
        the images' sizes as the engine reports them, an estimate only (a thin archive counts both its input and what
        it writes, and may go past it); an export counts the tar of the container's filesystem, against the container's size
        when the engine reports it.
      - Lines are appended, so one file can follow several tasks. A missing file is created with mode V(0600), owned by
        the user the module runs as (root with C(become)).
      - Nothing is written to a symbolic link (it is not followed), a FIFO, a directory, a device, a file with other hard
        links, or the archive itself. A file that cannot be written never fails the task; the module warns once and goes
        on without progress lines.
      - Nothing is written when there is nothing to stream, for example when the archive is up to date or the images are
        in the engine already, and nothing in check mode.
    type: path
notes:
  - >-
    To follow a long save or load, run the task with C(async) (longer than the transfer can take) and C(poll) (how
    often the controller asks whether it is done), and set O(progress_file). For example, with C(async: 7200),
    C(poll: 30) and C(progress_file: /srv/transfer/app.progress) on the task, run C(tail -f /srv/transfer/app.progress)
    on the managed host while it runs; its lines read like
    C(2025-03-04 10:15:20 saving redis:7 to /srv/transfer/app.tar.zst: 1.2 GiB of about 3.0 GiB (40%), 210.3 MiB/s, about 9 s left).
"""
