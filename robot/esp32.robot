*** Settings ***
Documentation     ESP32 (Xtensa LX6, 520 KB SRAM). No LX6 compiler or emulator exists here: the
...               firmware is built for and run on the Xtensa lx106 core in QEMU, and every
...               figure is a proxy estimate, labelled so.
Resource          resources/msfsim.resource
Suite Setup       Require Backend    ${BACKEND}    ${PLATFORM}


*** Variables ***
${PLATFORM}     esp32
${BACKEND}      qemu
${BASELINES}    ${CURDIR}/baselines/esp32.json


*** Test Cases ***    MODEL          PLATFORM
Plan fits and matches baseline (lx106 proxy)
    [Template]    Fused Plan Should Fit And Match Baseline
    lenet5-r28     ${PLATFORM}
    resnet8-r32    ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Outputs are bit-exact (lx106 proxy)
    [Template]    Fused Plan Output Should Be Bit Exact
    lenet5-r28     ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Figures are labelled as a proxy estimate
    Load Model    zoo:lenet5-r28
    Search Plan    ${PLATFORM}    objective=ram    max_overhead=${MAX_OVERHEAD}    cost=analytic
    Measure Plan    ${BACKEND}
    Measurement Should Be Proxy Estimate
