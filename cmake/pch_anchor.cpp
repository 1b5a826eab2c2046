// Anchor translation unit for the shared precompiled header (see QnasTarget.cmake).
